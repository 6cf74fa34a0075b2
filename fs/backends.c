/*
 * backends.c - the kinds of backend this daemon was built with ([mount]
 * backend = NAME, SPEC §8).
 */
#include "backend.h"

#include <stddef.h>
#include <string.h>

static const sbfs_backend_class *const built[] = {
	&sbfs_backend_store,
	&sbfs_backend_kafka,
	NULL,
};

const sbfs_backend_class *sbfs_backend_at(size_t i)
{
	return i < sizeof built / sizeof built[0] ? built[i] : NULL;
}

const sbfs_backend_class *sbfs_backend_find(const char *name, const char **why)
{
	for (size_t i = 0; built[i]; i++)
		if (strcmp(name, built[i]->name) == 0)
			return built[i];
	*why = "store or kafka";
	return NULL;
}
