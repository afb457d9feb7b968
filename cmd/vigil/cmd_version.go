package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func cmdVersion() command {
	c := command{name: "version", summary: "print vigil's version and build information", usage: `
Examples:
  vigil version`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		if done, err := parseFlags(fs, args); done {
			return err
		}
		rev := ""
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
			}
		}
		fmt.Fprintf(env.stdout, "vigil %s", version)
		if rev != "" {
			fmt.Fprintf(env.stdout, " (%.12s)", rev)
		}
		fmt.Fprintf(env.stdout, " %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	return c
}
