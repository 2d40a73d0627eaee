#!/usr/bin/env bash
# Installs and starts everything the demo and the tests need. Safe to run again.
source "$(dirname "$0")/lib.sh"
ensure_node_modules
setup_lxd
