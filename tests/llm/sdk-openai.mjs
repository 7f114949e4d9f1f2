// SPDX-License-Identifier: Apache-2.0
// The official OpenAI SDK against orch's in-jail endpoint (OPENAI_BASE_URL), with a
// placeholder key: chat completions non-streaming and streaming with usage, the Responses
// API (what Codex speaks) non-streaming and streaming, models, and a denied model.
import OpenAI from 'openai';

const fail = (what, got) => {
  console.error(`FAIL ${what}: ${JSON.stringify(got)}`);
  process.exit(1);
};
const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL,
  apiKey: 'orch-placeholder-key',
  maxRetries: 0,
});
const messages = [{ role: 'user', content: 'Say hello' }];
const expected = 'Hello from the fake upstream.';

const c = await client.chat.completions.create({ model: 'gpt-4.1', messages });
if (c.choices[0].message.content !== expected) fail('create', c);
if (!(c.usage.completion_tokens > 0)) fail('usage', c.usage);

// The client does not ask for usage; orch asks the upstream anyway (to bill) and the
// extra final chunk is harmless to the SDK.
const stream = await client.chat.completions.create({ model: 'gpt-4.1', messages, stream: true });
let text = '';
let usage = null;
for await (const chunk of stream) {
  text += chunk.choices[0]?.delta?.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
if (text !== expected) fail('stream text', text);
if (!usage || usage.completion_tokens !== 12) fail('stream usage', usage);

const r = await client.responses.create({ model: 'gpt-4.1', input: 'Say hello' });
if (r.output_text !== expected) fail('responses.create', r);
if (!(r.usage.output_tokens > 0)) fail('responses usage', r.usage);

const rs = await client.responses.create({ model: 'gpt-4.1', input: 'Say hello', stream: true });
let rtext = '';
let rusage = null;
for await (const ev of rs) {
  if (ev.type === 'response.output_text.delta') rtext += ev.delta;
  if (ev.type === 'response.completed') rusage = ev.response.usage;
}
if (rtext !== expected) fail('responses stream text', rtext);
if (!rusage || rusage.output_tokens !== 12) fail('responses stream usage', rusage);

const ids = [];
for await (const m of client.models.list()) ids.push(m.id);
if (!ids.includes('gpt-4.1')) fail('models', ids);

try {
  await client.chat.completions.create({ model: 'gpt-5-pro', messages });
  fail('denied model', 'no error');
} catch (e) {
  if (!(e instanceof OpenAI.PermissionDeniedError) || e.status !== 403) fail('denied model', String(e));
}
console.log(JSON.stringify({ ok: true, text, usage }));
