// Command agent is a minimal agent that uses VRAM Keeper through Ollama's
// official Go client and the management API.
//
// Usage:
//
//	vramkeeper serve &                            # or the desktop app
//	OLLAMA_HOST=127.0.0.1:11435 go run ./examples/go
//	OLLAMA_HOST=127.0.0.1:11435 go run ./examples/go code_review
//
// It asks twice: once with the alias "auto:code_generation", which VRAM
// Keeper resolves to the best installed code model that fits the VRAM
// budget (loading it, evicting others if needed), and once through
// POST /keeper/v1/best, which names the chosen model, why, and what it
// evicted, before using that model by name.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/envconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	task := "code_generation"
	if len(os.Args) > 1 {
		task = os.Args[1]
	}
	// OLLAMA_HOST points at VRAM Keeper; the client cannot tell the difference.
	client, err := api.ClientFromEnvironment()
	if err != nil {
		log.Fatal(err)
	}
	prompt := "Write a Go function that reverses a string."

	// 1. Let VRAM Keeper choose: auto:TASK (or auto:TASK/ROLE).
	model, err := chat(ctx, client, "auto:"+task, prompt)
	if err != nil {
		log.Fatalf("auto:%s: %v", task, err)
	}
	fmt.Printf("--- auto:%s was answered by %s\n", task, model)

	// 2. Ask the management API, then use the model by name.
	choice, err := best(ctx, task, "coder")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("--- /keeper/v1/best chose %s: %s (evicted %v)\n", choice.Model, choice.Reason, choice.Evicted)
	if _, err := chat(ctx, client, choice.Model, prompt); err != nil {
		log.Fatal(err)
	}
}

// chat streams an answer to stdout and returns the model that gave it.
func chat(ctx context.Context, c *api.Client, model, prompt string) (string, error) {
	answeredBy := model
	err := c.Chat(ctx, &api.ChatRequest{
		Model:    model,
		Messages: []api.Message{{Role: "user", Content: prompt}},
		Options:  map[string]any{"num_predict": 64},
	}, func(r api.ChatResponse) error {
		answeredBy = r.Model
		fmt.Print(r.Message.Content)
		return nil
	})
	fmt.Println()
	return answeredBy, err
}

type choice struct {
	Model   string   `json:"model"`
	Reason  string   `json:"reason"`
	Evicted []string `json:"evicted"`
}

// best calls POST /keeper/v1/best with plain net/http: the management API is
// small JSON, no client library needed.
func best(ctx context.Context, task, role string) (choice, error) {
	body, _ := json.Marshal(map[string]string{"task": task, "role": role})
	u := envconfig.Host().JoinPath("keeper", "v1", "best")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return choice{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok := os.Getenv("VRAMKEEPER_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return choice{}, fmt.Errorf("no VRAM Keeper at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return choice{}, fmt.Errorf("/keeper/v1/best: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var c choice
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return choice{}, fmt.Errorf("/keeper/v1/best: %w", err)
	}
	return c, nil
}
