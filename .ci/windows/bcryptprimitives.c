/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Rust programs under Wine only.
 *
 * Rust's std (1.78 and later) takes its randomness (HashMap keys, among others) from
 * ProcessPrng in bcryptprimitives.dll and imports it at load time. Debian's Wine 8 ships no
 * such export, so every Rust program fails to start under it ("unimplemented function
 * bcryptprimitives.dll.ProcessPrng"). This shim exports ProcessPrng and fills the buffer
 * through advapi32's SystemFunction036 (RtlGenRandom), which Wine implements. run.sh puts the
 * built DLL next to the executable, where the loader finds it before Wine's own.
 * Never shipped: the store itself is built and run against the real system DLLs on Windows.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
