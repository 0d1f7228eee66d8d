#!/usr/bin/env bash
# Install the TeX toolchain derivgen's LaTeX and PDF handouts need, from Debian's packages,
# idempotently: nothing is installed (and apt is not even updated) when everything is there.
#
#   bash scripts/setup-tex.sh          # English (pdfLaTeX) and Chinese (XeLaTeX + Noto CJK)
#   bash scripts/setup-tex.sh --en     # English only
#
# English needs latexmk, pdflatex and the LaTeX packages the handouts use (amsmath, mathtools,
# booktabs, geometry, hyperref, lmodern, ...); Chinese needs xelatex, xeCJK and the
# "Noto Serif CJK SC" font. pdftotext/pdftoppm (poppler-utils) are used by the PDF tests.
set -euo pipefail

want_zh=1
case "${1:-}" in
  --en) want_zh=0 ;;
  "") ;;
  *) echo "usage: $0 [--en]" >&2; exit 2 ;;
esac

have() { command -v "$1" >/dev/null 2>&1; }
# A LaTeX package is there when kpsewhich finds its .sty.
have_sty() { have kpsewhich && [ -n "$(kpsewhich "$1.sty" 2>/dev/null)" ]; }

missing=()
if ! have latexmk; then missing+=(latexmk); fi
if ! have pdflatex; then missing+=(texlive-latex-base); fi
if ! have_sty mathtools || ! have_sty booktabs || ! have_sty geometry; then
  missing+=(texlive-latex-recommended)
fi
if ! have_sty enumitem; then missing+=(texlive-latex-extra); fi
if ! have_sty lmodern; then missing+=(lmodern); fi
if ! have pdftotext || ! have pdftoppm; then missing+=(poppler-utils); fi
if [ "$want_zh" = 1 ]; then
  if ! have xelatex; then missing+=(texlive-xetex); fi
  if ! have_sty xeCJK; then missing+=(texlive-lang-cjk texlive-lang-chinese); fi
  if ! have_sty fontspec; then missing+=(texlive-fonts-recommended); fi
  # (grep reads all of fc-list's output: with -q it could stop early, and pipefail would object)
  if ! { have fc-list && fc-list : family | grep -i "Noto Serif CJK" >/dev/null; }; then
    missing+=(fonts-noto-cjk)
  fi
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

# The first run installs the whole set at once: a partly installed TeX is not worth probing.
packages=(texlive-latex-base texlive-latex-recommended texlive-latex-extra latexmk lmodern poppler-utils)
if [ "$want_zh" = 1 ]; then
  packages+=(texlive-xetex texlive-lang-cjk texlive-lang-chinese texlive-fonts-recommended fonts-noto-cjk)
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! have sudo; then
    echo "setup-tex: not root and no sudo; install these packages: ${packages[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "setup-tex: installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$SECONDS
# apt's chatter goes to a log, shown only if something fails.
if ! { "${sudo[@]}" apt-get update -qq && \
       "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup-tex: installing failed" >&2
  exit 1
fi
echo "setup-tex: done in $((SECONDS - start)) s" >&2
