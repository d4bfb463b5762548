#!/usr/bin/env bash
# The Debian package of build dir $1: make it with cpack ($2, default
# cpack) into a scratch directory, check its control fields (dpkg-deb -I)
# and contents, unpack it with dpkg -x into a scratch root (nothing is
# installed on the system), then build and run tests/install's consumers
# against the unpacked /usr (consume.sh: find_package and pkg-config,
# shared and static).
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
build=$1 cpack=${2:-cpack} src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log"; echo "cpack -G DEB failed"; exit 1
fi
shopt -s nullglob
debs=("$tmp"/pkg/*.deb)
if [ ${#debs[@]} -ne 1 ]; then
  cat "$tmp/cpack.log"; echo "expected one .deb in $tmp/pkg, found ${#debs[@]}"; exit 1
fi
deb=${debs[0]}
echo "deb: $(basename "$deb")"

# Control fields: name, version from the header, run-time dependencies.
control=$(dpkg-deb -I "$deb" control)
field() { printf '%s\n' "$control" | sed -n "s/^$1: //p"; }
# The version's source is the header's three macros.
hdr=$src/../../include/wsched.h
version=""
for part in MAJOR MINOR PATCH; do
  n=$(sed -n "s/^#define WSCHED_VERSION_$part \([0-9]*\).*/\1/p" "$hdr")
  version=${version:+$version.}$n
done
[ "$(field Package)" = libwsched-dev ] || { echo "Package: '$(field Package)'"; exit 1; }
case "$(field Version)" in
  "$version" | "$version"-*) ;;
  *) echo "Version: '$(field Version)', the build's version is $version"; exit 1 ;;
esac
depends=$(field Depends)
echo "Depends: $depends"
# liburcu-dev always (the static archive, the CMake package and wsched.pc
# name liburcu's libraries); liburcu8 / libjemalloc2 when the shared library
# needs them at run time (a plain build inlines liburcu's wfcqueue and
# needs no liburcu .so: dpkg-shlibdeps then rightly adds none).
has() { [[ ", $depends," == *", $1"[\ ,]* ]]; }
has liburcu-dev || { echo "Depends lacks liburcu-dev"; exit 1; }
if [ "$(sed -n 's/^WSCHED_JEMALLOC:BOOL=//p' "$build/CMakeCache.txt")" = ON ]; then
  has libjemalloc-dev || { echo "jemalloc build, Depends lacks libjemalloc-dev"; exit 1; }
fi
for f in Maintainer Description Homepage; do
  [ -n "$(field "$f")" ] || { echo "control field $f missing"; exit 1; }
done

# Unpack and check the layout, then build against it.
root=$tmp/root
dpkg -x "$deb" "$root"
for f in usr/include/wsched.h usr/share/doc/wsched/LICENSE; do
  [ -f "$root/$f" ] || { echo "$f missing from the package"; exit 1; }
done
for f in "$src"/../../include/*.h "$src"/../../include/*.hpp; do
  [ -e "$f" ] || continue
  [ -f "$root/usr/include/$(basename "$f")" ] || { echo "header $(basename "$f") missing"; exit 1; }
done
libs=$(find "$root/usr" -name 'libwsched.*' -printf '%f\n' | sort | tr '\n' ' ')
# The soname: libwsched.so.MAJOR, or libwsched.so.0.MINOR before 1.0
# (CMakeLists.txt: every 0.x minor may break the ABI).
major=${version%%.*} rest=${version#*.}
if [ "$major" = 0 ]; then soname=libwsched.so.0.${rest%%.*}; else soname=libwsched.so.$major; fi
for f in libwsched.a libwsched.so "$soname"; do
  [[ " $libs" == *" $f "* ]] || { echo "$f missing from the package (has: $libs)"; exit 1; }
done
[ -n "$(find "$root/usr" -path '*/cmake/wsched/wschedConfig.cmake')" ] ||
  { echo "wschedConfig.cmake missing from the package"; exit 1; }
# Every library the packaged .so needs comes from a package in Depends.
so=$(find "$root/usr" -name "$soname")
needed=$(objdump -p "$so" | sed -n 's/^ *NEEDED *//p' | tr '\n' ' ')
echo "NEEDED: $needed"
for lib in $needed; do
  case "$lib" in
    liburcu*.so.8) has liburcu8 || { echo "$lib needed, Depends lacks liburcu8"; exit 1; } ;;
    libjemalloc.so.2) has libjemalloc2 || { echo "$lib needed, Depends lacks libjemalloc2"; exit 1; } ;;
    libc.so.6) has libc6 || { echo "$lib needed, Depends lacks libc6"; exit 1; } ;;
  esac
done
mkdir "$tmp/scratch"
"$src/consume.sh" "$root/usr" "$tmp/scratch"
echo "install_deb: $(basename "$deb") ok (Depends: $depends)"
