// Debian's libopenblas-dev puts cblas.h under the openblas-pthread include folder named by
// openblas.pc; liblapacke-dev puts lapacke.h in /usr/include. openblas.pc says NO_LAPACKE=1,
// hence the second `link` in module.modulemap.
#include <cblas.h>
#include <lapacke.h>
