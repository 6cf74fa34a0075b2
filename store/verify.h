/*
 * verify.h - the verifier's API is public: see sb_store.h ("checking a topic
 * directory on disk"). This internal header only names it for verify.c and
 * the tests that include it.
 */
#ifndef SB_VERIFY_H
#define SB_VERIFY_H

#include "sb_store.h"

#endif
