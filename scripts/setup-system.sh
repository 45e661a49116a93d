#!/usr/bin/env bash
# Installs the Debian packages headless Miniworld rendering needs (EGL + Mesa + GLU), and chromium for the
# HTML report's browser test, only if missing.
set -euo pipefail
missing=0
for lib in libEGL.so.1 libGL.so.1 libGLU.so.1; do
  ldconfig -p | grep -q "$lib" || missing=1
done
ls /usr/lib/*/libEGL_mesa.so.0 >/dev/null 2>&1 || missing=1
command -v chromium >/dev/null 2>&1 || missing=1
[ "$missing" = 0 ] && exit 0
echo "installing EGL/Mesa packages for headless rendering and chromium for the HTML report test"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglu1-mesa libgles2 chromium >/dev/null
