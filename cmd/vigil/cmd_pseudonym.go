package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/vigilhq/vigil/internal/config"
)

func cmdPseudonym() command {
	c := command{name: "pseudonym", summary: "print the stored pseudonyms of clear user, session or family ids and IPs (privacy.key_file)", usage: `
Usage:
  vigil pseudonym --config FILE VALUE...

With privacy.key_file set, vigil stores keyed pseudonyms (ps_ and 32 hex
digits of HMAC-SHA-256) in place of user ids, session and family ids and
IP addresses. This prints the pseudonym of each clear VALUE, one per line,
to look them up in Grafana, vigil query --param or clickhouse-client.
vigil timeline does it by itself. Without a key it prints VALUE as is.

Examples:
  vigil pseudonym --config vigil.yaml usr_42 203.0.113.50
  VIGIL_PRIVACY_KEY_FILE=/etc/vigil/pseudonym.key vigil pseudonym fam_8a1c`}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) error {
		fs := newFlags(&c, env)
		path := fs.String("config", "", "config file (YAML); empty means defaults plus environment")
		if err := fs.Parse(args); err != nil { // positional values: not parseFlags
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return exitError{code: 2}
		}
		if fs.NArg() == 0 {
			return errUsage("give at least one value")
		}
		env.warnUnknownEnv()
		cfg, err := config.Load(*path, env.getenv)
		if err != nil {
			return err
		}
		k, err := cfg.Privacy.Key()
		if err != nil {
			return err
		}
		if !k.Enabled() {
			fmt.Fprintln(env.stderr, "vigil: privacy.key_file is not set: ids are stored in clear")
		}
		for _, v := range fs.Args() {
			fmt.Fprintln(env.stdout, k.Of(v))
		}
		return nil
	}
	return c
}
