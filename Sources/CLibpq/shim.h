#ifndef STACKLAB_CLIBPQ_SHIM_H
#define STACKLAB_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
