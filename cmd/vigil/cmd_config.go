package main

import (
	"context"
	"fmt"

	"github.com/vigilhq/vigil/internal/config"
)

func cmdConfig() command {
	c := command{name: "config", summary: "check a config file (vigil config check --config F)", usage: `
Usage:
  vigil config check --config FILE [--print]

Loads FILE, applies VIGIL_* environment overrides, validates every key, and
exits non-zero naming each bad key (with its line). --print shows the
effective configuration.

Examples:
  vigil config check --config /etc/vigil/vigil.yaml
  VIGIL_KAFKA_BROKERS=kafka-1:9092,kafka-2:9092 vigil config check --config vigil.yaml --print`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		if len(args) == 0 || args[0] != "check" {
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
				newFlags(&c, env).Usage()
				return nil
			}
			return errUsage("usage: vigil config check --config FILE")
		}
		fs := newFlags(&c, env)
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		print := fs.Bool("print", false, "print the effective configuration")
		if done, err := parseFlags(fs, args[1:]); done {
			return err
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return exitError{code: 1, msg: err.Error()}
		}
		if *print {
			out, err := cfg.Redacted()
			if err != nil {
				return err
			}
			env.stdout.Write(out)
		}
		name := *path
		if name == "" {
			name = "defaults"
		}
		fmt.Fprintf(env.stdout, "%s: ok\n", name)
		return nil
	}
	return c
}
