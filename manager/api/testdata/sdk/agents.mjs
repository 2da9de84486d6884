// What a Codex-style and a Claude-Code-style agent do, with the official
// SDKs, against VRAM Keeper's proxy at $VRAMKEEPER_URL. Prints one JSON
// object with what came back; manager/api's TestOfficialSDKs checks it.
//
//   VRAMKEEPER_URL=http://127.0.0.1:11435 VRAMKEEPER_TOKEN=... MODEL=auto:chat OTHER_MODEL=llama3:8b node agents.mjs
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const base = process.env.VRAMKEEPER_URL;
const model = process.env.MODEL || 'auto:chat';
const other = process.env.OTHER_MODEL || model;
if (!base) {
  console.error('VRAMKEEPER_URL is not set');
  process.exit(2);
}

// No retries: a failure must show, not be papered over. The key is VRAM
// Keeper's token (OpenAI's SDK sends it as a bearer token, Anthropic's as
// x-api-key); without one it is unused, but the SDKs insist on one.
const opts = { apiKey: process.env.VRAMKEEPER_TOKEN || 'unused', maxRetries: 0, timeout: 120_000 };
const openai = new OpenAI({ ...opts, baseURL: `${base}/v1` });
const anthropic = new Anthropic({ ...opts, baseURL: base });

// Greedy and short: the test models have random weights, so a sampled
// first token can end the answer at once.
const prompt = 'hello';
const user = [{ role: 'user', content: prompt }];
const out = {};

const r = await openai.responses.create({ model, input: prompt, max_output_tokens: 8, temperature: 0 });
out.responses = { model: r.model, status: r.status, text: r.output_text };

{
  const stream = await openai.responses.create({
    model, input: prompt, max_output_tokens: 8, temperature: 0, stream: true,
  });
  const types = [];
  let text = '';
  let done;
  for await (const e of stream) {
    types.push(e.type);
    if (e.type === 'response.output_text.delta') text += e.delta;
    if (e.type === 'response.completed') done = e.response;
  }
  out.responses_stream = { model: done?.model, status: done?.status, text, first: types[0], last: types.at(-1) };
}

const m = await anthropic.messages.create({ model, max_tokens: 8, temperature: 0, messages: user });
out.messages = { model: m.model, stop: m.stop_reason, text: textOf(m) };

{
  const stream = await anthropic.messages.create({ model, max_tokens: 8, temperature: 0, stream: true, messages: user });
  const types = [];
  let text = '';
  let started;
  for await (const e of stream) {
    types.push(e.type);
    if (e.type === 'message_start') started = e.message;
    if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
  }
  out.messages_stream = { model: started?.model, text, first: types[0], last: types.at(-1) };
}

// Another model, through the SDK's accumulating stream helper: the budget
// holds one of the two, so this swaps.
{
  const final = await anthropic.messages.stream({ model: other, max_tokens: 8, temperature: 0, messages: user }).finalMessage();
  out.other = { model: final.model, stop: final.stop_reason, text: textOf(final) };
}

// An agent that gives up after the first event: its hold must end.
{
  const stream = await anthropic.messages.create({ model, max_tokens: 64, temperature: 0, stream: true, messages: user });
  for await (const e of stream) {
    out.left_after = e.type;
    break; // aborts the request
  }
}

out.anthropic_models = [];
for await (const info of anthropic.models.list()) out.anthropic_models.push(info.id);
const one = await anthropic.models.retrieve(model);
out.anthropic_model = { id: one.id, display_name: one.display_name, max_input_tokens: one.max_input_tokens };
out.openai_models = [];
for await (const info of openai.models.list()) out.openai_models.push(info.id);

console.log(JSON.stringify(out));

function textOf(msg) {
  return msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}
