"""Development tooling: the service registry, the scaffold and the stack that e2e tests and
benchmarks start. Never installed into an image."""
