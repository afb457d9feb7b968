package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

// Error returns the wrapped error's message.
func (p permanentError) Error() string { return p.err.Error() }

// Unwrap returns the wrapped error.
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so that IsPermanent reports true; the work is
// dead-lettered or reported, never retried. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err (or an error it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// backoff is a jittered exponential backoff ("full jitter").
type backoff struct {
	initial, max time.Duration
	attempt      int
}

// next returns the wait before the next attempt: uniform in [d/2, d] where d
// doubles from initial up to max.
func (b *backoff) next() time.Duration {
	d := b.initial << min(b.attempt, 30)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.attempt++
	return d/2 + rand.N(d/2+1)
}

// retry calls op until it succeeds, returns a permanent error, or ctx ends;
// onRetry is called with each failure before the wait. It never gives up on
// transient errors: vigil pushes back instead of dropping data.
func retry(ctx context.Context, initial, max time.Duration, op func(context.Context) error, onRetry func(error, time.Duration)) error {
	b := backoff{initial: initial, max: max}
	for {
		err := op(ctx)
		if err == nil || IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		wait := b.next()
		if onRetry != nil {
			onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
	}
}
