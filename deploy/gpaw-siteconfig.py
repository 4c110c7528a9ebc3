# GPAW build configuration used by scripts/setup.sh (GPAW_CONFIG=deploy/gpaw-siteconfig.py).
# Debian packages: libxc-dev libopenblas-dev libfftw3-dev libopenmpi-dev openmpi-bin
# libscalapack-openmpi-dev.  On a cluster, replace with the site's MPI/BLAS/ScaLAPACK modules.
mpi = True
compiler = "mpic++"
libraries += ["blas", "fftw3", "scalapack-openmpi"]  # noqa: F821 (GPAW injects `libraries`)
fftw = True
scalapack = True
