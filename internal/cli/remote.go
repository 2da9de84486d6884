package cli

import (
	"context"
)

// remote returns the API of a running instance, if one answers.
func (e *Env) remote(ctx context.Context) (Keeper, bool) { return nil, false }

// Serve runs the manager headless until ctx ends.
func Serve(ctx context.Context, env *Env) error {
	stop := env.Start(ctx)
	defer stop()
	<-ctx.Done()
	return nil
}
