# shellcheck shell=bash
# write_section NAME TEXT: replaces the "## NAME" section of BENCHMARKS.md with TEXT (or appends it).
write_section() {
  local name=$1 text=$2 tmp
  tmp=$(mktemp)
  if [ -f BENCHMARKS.md ] && grep -q "^## $name" BENCHMARKS.md; then
    awk -v s="$text" -v h="## $name" 'BEGIN{skip=0} index($0, h) == 1 {print s; print ""; skip=1; next} /^## /{skip=0} !skip' BENCHMARKS.md >"$tmp"
    mv "$tmp" BENCHMARKS.md
  else
    [ -f BENCHMARKS.md ] || printf '# Benchmarks\nEach section is written by the script it names; numbers from one run on one machine.\n' >BENCHMARKS.md
    printf '\n%s\n' "$text" >>BENCHMARKS.md
    rm -f "$tmp"
  fi
  echo "$text"
}
