{
  "targets": [
    {
      "target_name": "sock_diag",
      "sources": ["src/identity/sock-diag/sock_diag.c", "src/identity/sock-diag/inet_diag.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
