"""What the tests share, and the benchmarks with them: paths, servers started on 127.0.0.1, generated files,
stand-ins for outside services, the scripted model. Test modules import from here, never from each other."""
