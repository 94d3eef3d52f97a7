{
  "targets": [
    {
      "target_name": "sock_diag",
      "sources": ["native/sock_diag.c", "native/inet_diag.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
