#!/usr/bin/env bash
# Installs what tests/real_terminals.rs and the tmux tests drive (Xvfb,
# xterm, kitty, xdotool, ImageMagick, sshd, tmux) when missing. Debian/Ubuntu.
set -euo pipefail
need=()
for tool in tmux:tmux Xvfb:xvfb xterm:xterm kitty:kitty xdotool:xdotool \
  import:imagemagick sshd:openssh-server ssh:openssh-client xwd:x11-apps; do
  command -v "${tool%%:*}" >/dev/null || [ -x "/usr/sbin/${tool%%:*}" ] || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "[test-full] installing ${need[*]}" >&2
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}" >/dev/null
fi
