#ifndef STACKLAB_CLIBVIRT_SHIM_H
#define STACKLAB_CLIBVIRT_SHIM_H
/* libvirt's headers use NULL without including stddef.h themselves. */
#include <stddef.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/* Swallows libvirt's errors instead of printing them; callers read virGetLastError. */
static void stacklab_virt_silent_error(void *userData, virErrorPtr error) {
    (void)userData;
    (void)error;
}

static inline void stacklab_virt_silence_errors(void) {
    virSetErrorFunc(NULL, stacklab_virt_silent_error);
}
#endif
