package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/ollama/ollama/openai"
)

// dialect is how one translated API (OpenAI's chat and completions, OpenAI's
// Responses, Anthropic's Messages) frames its answers, so that relay can
// serve them all with the same hold on the model.
type dialect struct {
	// writeError answers with an error in the API's own shape, before
	// anything else was written.
	writeError errorWriter
	// streamError is the event that reports a failure inside a stream that
	// already started: its status line is gone.
	streamError func(status int, msg string) any
	// end is written after the last event ("data: [DONE]" for OpenAI).
	end string
}

// errorWriter writes an error answer with status and message.
type errorWriter func(w http.ResponseWriter, status int, msg string)

var openAIDialect = dialect{
	writeError:  writeOpenAIError,
	streamError: func(status int, msg string) any { return openai.NewError(status, msg) },
	end:         "data: [DONE]\n\n",
}

// sseEvent is a Server-Sent Event with a name (Anthropic's and the
// Responses API's streams name every event; OpenAI's chat stream does not).
type sseEvent struct {
	name string
	data any
}

// writeSSE writes v as one event: an sseEvent with its name, anything else
// as a bare data line.
func writeSSE(w io.Writer, v any) error {
	name := ""
	if e, ok := v.(sseEvent); ok {
		name, v = e.name, e.data
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if name != "" {
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	} else {
		_, err = fmt.Fprintf(w, "data: %s\n\n", b)
	}
	return err
}
