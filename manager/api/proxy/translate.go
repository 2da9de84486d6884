package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/openai"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/wire"
)

// The translated APIs (OpenAI's chat, completions, embeddings and
// Responses, Anthropic's Messages) share one path to Ollama: read the
// body, check and convert it to Ollama's native request as Ollama's own
// middleware does, load and hold the model it names, and pin the native
// request to that model (its real name, keep_alive -1, the manager's
// runner options). Each API then relays the answer in its own shape.

// translate runs that path for one request: convert checks the decoded
// request and makes the native one, naming the model asked for; pin
// stamps the held model onto it. On failure it has answered in d's shape
// and ok is false; otherwise the caller relays the answer and releases h.
func translate[Req, Native any](p *Proxy, w http.ResponseWriter, r *http.Request, d dialect,
	convert func(*Req) (model string, native *Native, err error), pin func(*Native, held)) (req Req, native *Native, h held, ok bool) {
	release, err := p.decode(w, r, &req)
	if err != nil {
		p.failAs(w, r, d.writeError, err)
		return req, nil, held{}, false
	}
	model, native, err := convert(&req)
	if err != nil {
		release()
		p.failAs(w, r, d.writeError, err)
		return req, nil, held{}, false
	}
	if h, err = p.acquire(r.Context(), model, "request on "+r.URL.Path); err != nil {
		release()
		p.failAs(w, r, d.writeError, err)
		return req, nil, held{}, false
	}
	pin(native, h)
	// The request, converted and forwarded, lives as long as the answer:
	// its room in the body gate is given back with the hold.
	hold := h.release
	h.release = func() { hold(); release() }
	return req, native, h, true
}

// decode reads a translated request's JSON body, zstd-compressed or not:
// Codex compresses its bodies, and Ollama accepts both. MaxBody bounds the
// body as it decompresses. release gives back its room in the body gate.
func (p *Proxy) decode(w http.ResponseWriter, r *http.Request, v any) (release func(), err error) {
	if r.Header.Get("Content-Encoding") == "zstd" {
		dec, err := zstd.NewReader(r.Body, zstd.WithDecoderMaxMemory(zstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return func() {}, wire.BadRequestf("failed to decompress zstd body: %w", err)
		}
		defer dec.Close()
		r.Body = io.NopCloser(dec)
	}
	b, release, err := p.opt.Gate.ReadBody(w, r, p.opt.MaxBody)
	if err != nil {
		return release, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		release()
		return release, wire.BadRequestf("malformed JSON body: %w", err)
	}
	return release, nil
}

// zstdWindow bounds the memory a compressed body may make the decoder take
// (Ollama's middleware uses the same bound).
const zstdWindow = 8 << 20

var keepForever = api.Duration{Duration: -1}

func pinChat(n *api.ChatRequest, h held) {
	n.Model, n.KeepAlive, n.Options = h.model, &keepForever, pinOptions(n.Options, h)
}

func pinGenerate(n *api.GenerateRequest, h held) {
	n.Model, n.KeepAlive, n.Options = h.model, &keepForever, pinOptions(n.Options, h)
}

func pinEmbed(n *api.EmbedRequest, h held) {
	n.Model, n.KeepAlive, n.Options = h.model, &keepForever, pinOptions(n.Options, h)
}

// relay sends a native request to Ollama and writes the translated answer
// framed as f: each JSON object Ollama sends is converted by each; with
// stream, every converted value is one Server-Sent Event, flushed at once,
// and the stream ends with f.end; without, the one value is the body.
func (p *Proxy) relay(w http.ResponseWriter, r *http.Request, f dialect, path string, native any, stream bool,
	each func(raw []byte) (out []any, done bool, err error)) {
	body, err := json.Marshal(native)
	if err != nil {
		p.failAs(w, r, f.writeError, err)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.upstream.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		p.failAs(w, r, f.writeError, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		p.failAs(w, r, f.writeError, fmt.Errorf("ollama at %s: %w: %w", p.upstream.Redacted(), manager.ErrUnreachable, err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := upstreamErrorMessage(resp)
		wire.LogFailure(p.log, r, resp.StatusCode, errors.New(msg))
		f.writeError(w, resp.StatusCode, msg)
		return
	}

	rc := http.NewResponseController(w)
	dec := json.NewDecoder(resp.Body)
	started := false
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				p.log.Warn("v1: reading ollama's answer", "path", r.URL.Path, "err", err)
				if !started {
					f.writeError(w, http.StatusBadGateway, fmt.Sprintf("reading ollama's answer: %v", err))
				}
			}
			return
		}
		if msg := inBandError(raw); msg != "" {
			// Ollama reports a failure after the 200 inside the stream.
			if !started {
				f.writeError(w, http.StatusInternalServerError, msg)
			} else if stream {
				_ = writeSSE(w, f.streamError(http.StatusInternalServerError, msg))
			}
			return
		}
		out, done, err := each(raw)
		if err != nil {
			p.log.Warn("v1: converting ollama's answer", "path", r.URL.Path, "err", err)
			if !started {
				f.writeError(w, http.StatusBadGateway, fmt.Sprintf("converting ollama's answer: %v", err))
			}
			return
		}
		if !stream {
			if len(out) > 0 {
				wire.WriteJSON(w, http.StatusOK, out[0])
			}
			return
		}
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
		}
		for _, v := range out {
			if err := writeSSE(w, v); err != nil {
				return
			}
		}
		if done {
			fmt.Fprint(w, f.end)
		}
		if err := rc.Flush(); err != nil || done {
			return
		}
	}
}

// inBandError returns the message of an {"error": "..."} object.
func inBandError(raw []byte) string {
	if !bytes.Contains(raw, []byte(`"error"`)) {
		return ""
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return ""
	}
	return e.Error
}

// upstreamErrorMessage reads Ollama's {"error": ...} from a failed answer.
func upstreamErrorMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamErrMsg))
	if msg := inBandError(b); msg != "" {
		return msg
	}
	if t := strings.TrimSpace(string(b)); t != "" {
		return t
	}
	return http.StatusText(resp.StatusCode)
}

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
