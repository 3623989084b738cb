module anytlsref.invalid/interop/anytls-go

go 1.24.0

require (
	anytls v0.0.12 // indirect
	github.com/chen3feng/stl4go v0.1.1 // indirect
	github.com/sagernet/sing v0.5.1 // indirect
	github.com/sirupsen/logrus v1.9.3 // indirect
	golang.org/x/sys v0.29.0 // indirect
)

replace anytls v0.0.12 => github.com/anytls/anytls-go v0.0.12

tool (
	anytls/cmd/client
	anytls/cmd/server
)
