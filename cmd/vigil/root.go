package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/internal/config"
)

// command is one vigil subcommand.
type command struct {
	name    string
	summary string
	usage   string // flags and examples, shown by `vigil <name> --help`
	run     func(ctx context.Context, env *cmdEnv, args []string) error
}

// cmdEnv is what every subcommand gets: streams and the environment.
type cmdEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	environ        func() []string // all NAME=value pairs, for spotting misspelled VIGIL_* names
	// tracerProvider, set only by tests (an in-memory exporter), turns
	// tracing on in vigil run in place of tracing.otlp_endpoint's exporter.
	tracerProvider trace.TracerProvider
}

// warnUnknownEnv tells the user about VIGIL_* variables that configure nothing.
func (e *cmdEnv) warnUnknownEnv() {
	if e.environ == nil {
		return
	}
	for _, name := range config.UnknownEnv(e.environ()) {
		fmt.Fprintf(e.stderr, "vigil: warning: environment variable %s is not a vigil setting (see docs/configuration.md); ignored\n", name)
	}
}

// exitError carries a process exit code; msg "" means already reported.
type exitError struct {
	code int
	msg  string
}

// Error returns the message, "" when it was already reported.
func (e exitError) Error() string { return e.msg }

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// errUsage is returned for bad command lines (exit code 2).
func errUsage(format string, args ...any) error {
	return exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

func commands() []command {
	cs := []command{cmdRun(), cmdMigrate(), cmdConfig(), cmdVersion(), cmdDemo(), cmdSimulate(), cmdScore(), cmdRules(), cmdSLO(), cmdBacktest(), cmdRevoke(), cmdDashboards(), cmdTimeline(), cmdIncident(), cmdQuery(), cmdPseudonym(), cmdBench()}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

// Run is vigil's entry point: it parses args (without the program name),
// runs the subcommand until it finishes or ctx is cancelled, and returns its
// error. It never calls os.Exit.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runWithEnv(ctx, args, &cmdEnv{stdin: stdin, stdout: stdout, stderr: stderr, getenv: lookupEnv, environ: os.Environ})
}

func runWithEnv(ctx context.Context, args []string, env *cmdEnv) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			return runWithEnv(ctx, []string{args[1], "--help"}, env)
		}
		printUsage(env.stdout)
		if len(args) == 0 {
			return errUsage("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	printUsage(env.stderr)
	return errUsage("unknown command %q", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `vigil watches session lifecycle events and acts on them.

Usage:
  vigil <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'vigil <command> --help' for a command's flags and examples.
Design: docs/architecture.md; configuration: docs/configuration.md.
`)
}

// newFlags returns a FlagSet for c that prints c's usage on --help.
func newFlags(c *command, env *cmdEnv) *flag.FlagSet {
	fs := flag.NewFlagSet("vigil "+c.name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() { // to stdout, like `vigil --help`, so it pages and greps
		fmt.Fprintf(env.stdout, "vigil %s — %s\n\n%s", c.name, c.summary, strings.TrimSpace(c.usage)+"\n")
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(env.stdout, "\nFlags:\n")
			fs.SetOutput(env.stdout)
			fs.PrintDefaults()
			fs.SetOutput(env.stderr)
		}
	}
	return fs
}

// parseFlags parses args; --help is success (nil, done=true).
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, exitError{code: 2, msg: ""}
	}
	if fs.NArg() > 0 {
		return true, errUsage("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return false, nil
}
