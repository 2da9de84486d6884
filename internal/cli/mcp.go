package cli

import (
	"context"
	"sync"

	"github.com/vramkeeper/vramkeeper/internal/version"
	"github.com/vramkeeper/vramkeeper/manager/api/client"
	"github.com/vramkeeper/vramkeeper/manager/api/mcp"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
)

// cmdMCP serves the MCP tools to one client over stdin and stdout until
// the client closes stdin or ctx ends: on the running instance (k is its
// API) or on the manager this process runs. Only MCP goes to stdout; the
// log goes to stderr.
func cmdMCP(ctx context.Context, env *Env, k keeper.Keeper) error {
	if r, ok := k.(*client.Remote); ok {
		// The tools read the instance's state from the Remote's cache:
		// keep it fresh for as long as the client stays.
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
		defer func() { cancel(); wg.Wait() }()
	}
	return mcp.ServeStdio(ctx, k, env.Stdin, env.Stdout, mcp.Options{Version: version.Version, Log: env.Log})
}
