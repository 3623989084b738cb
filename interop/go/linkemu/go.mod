module anytlsref.invalid/interop/linkemu

go 1.24.0
