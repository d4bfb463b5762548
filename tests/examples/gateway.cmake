# The network fan-out example (tests/examples/gateway.c and its parts): an
# HTTP gateway fanning out over TCP to a backend on loopback, in three
# variants (wsched, thread per call, mutex pool). With no arguments it runs
# its own test: backend, gateways and client in-process on ephemeral ports.
# bench/gateway.sh runs its serve/backend modes under wrk.
wsched_test(example_gateway examples/gateway.c examples/gateway_backend.c
  examples/gateway_http.c examples/gateway_threads.c examples/gateway_wsched.c
  TIMEOUT 300)
target_link_libraries(example_gateway PRIVATE Threads::Threads)
