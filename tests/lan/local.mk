# tests/lan/: a LAN in network namespaces on this machine: a worker, nginx as a caching proxy
# (contrib/nginx/cachepot-proxy.conf) and two clients mounting the worker through it.
TESTS += tests/lan/lan.sh
EXTRA_DIST += tests/lan/lan.sh contrib/nginx/cachepot-proxy.conf contrib/cachepot-certs.sh
