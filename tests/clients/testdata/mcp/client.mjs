// The official TypeScript MCP SDK as an agent uses it, against VRAM Keeper's
// MCP server. tests/clients runs it and checks what it prints: one JSON
// object with what each step saw.
//
//   node client.mjs stdio COMMAND [ARGS...]   spawn the server (vramkeeper mcp)
//   node client.mjs http URL [TOKEN]          Streamable HTTP (a token, when given, as a bearer token)
//
// The steps come from the environment: MCP_STEPS, a JSON list of
// {"name", "tool", "args"}; each call's result (or the error it threw) is
// printed under its name. A call with no tool lists the tools.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, target, ...rest] = process.argv.slice(2);
const steps = JSON.parse(process.env.MCP_STEPS ?? "[]");
const out = { protocol: null, server: null, steps: {} };

let transport;
if (mode === "stdio") {
  // Only what the server needs; the SDK passes a safe default environment.
  transport = new StdioClientTransport({ command: target, args: rest, stderr: "inherit" });
} else if (mode === "http") {
  const headers = rest[0] ? { Authorization: `Bearer ${rest[0]}` } : {};
  transport = new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
} else {
  console.error(`usage: client.mjs stdio COMMAND [ARGS...] | http URL [TOKEN]`);
  process.exit(2);
}

const client = new Client({ name: "vramkeeper-test-agent", version: "1.0.0" });
try {
  await client.connect(transport);
} catch (e) {
  // A refused connection (401 without the token) is a result, not a crash.
  out.connectError = String(e?.message ?? e);
  out.connectCode = e?.code ?? null; // the HTTP status, for the Streamable HTTP transport
  console.log(JSON.stringify(out));
  process.exit(0);
}
out.protocol = transport.protocolVersion ?? null;
out.server = client.getServerVersion() ?? null;

for (const step of steps) {
  try {
    if (!step.tool) {
      const { tools } = await client.listTools();
      out.steps[step.name] = {
        tools: tools.map((t) => ({
          name: t.name,
          inputType: t.inputSchema?.type,
          hasOutputSchema: !!t.outputSchema,
          required: t.inputSchema?.required ?? [],
        })),
      };
      continue;
    }
    // callTool checks structuredContent against the tool's output schema.
    const res = await client.callTool({ name: step.tool, arguments: step.args ?? {} }, undefined, { timeout: 300_000 });
    out.steps[step.name] = {
      isError: !!res.isError,
      text: (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(" | "),
      structured: res.structuredContent ?? null,
    };
  } catch (e) {
    out.steps[step.name] = { thrown: String(e?.message ?? e), code: e?.code ?? null };
  }
}
await client.close();
console.log(JSON.stringify(out));
