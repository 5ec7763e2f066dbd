#ifndef STACKLAB_CLIBYAML_SHIM_H
#define STACKLAB_CLIBYAML_SHIM_H
#include <yaml.h>
#endif
