// SPDX-License-Identifier: Apache-2.0
// The official Anthropic SDK against orch's in-jail endpoint (ANTHROPIC_BASE_URL), with a
// placeholder key: non-streaming, streaming, count_tokens, models, and a denied model.
import Anthropic from '@anthropic-ai/sdk';

const fail = (what, got) => {
  console.error(`FAIL ${what}: ${JSON.stringify(got)}`);
  process.exit(1);
};
const client = new Anthropic({
  baseURL: process.env.ANTHROPIC_BASE_URL,
  apiKey: 'orch-placeholder-key',
  maxRetries: 0,
});
const messages = [{ role: 'user', content: 'Say hello' }];
const expected = 'Hello from the fake upstream.';

const msg = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 200, messages });
if (msg.content[0].text !== expected) fail('messages.create text', msg);
if (!(msg.usage.output_tokens > 0 && msg.usage.input_tokens > 0)) fail('usage', msg.usage);

let text = '';
const stream = client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 200, messages });
stream.on('text', (t) => { text += t; });
const final = await stream.finalMessage();
if (text !== expected) fail('stream text', text);
if (final.usage.output_tokens !== 12) fail('stream usage', final.usage);

const ct = await client.messages.countTokens({ model: 'claude-sonnet-4-5', messages });
if (!(ct.input_tokens > 0)) fail('countTokens', ct);

const models = await client.models.list();
if (!models.data.some((m) => m.id === 'claude-sonnet-4-5')) fail('models', models.data);

try {
  await client.messages.create({ model: 'claude-opus-4-1', max_tokens: 10, messages });
  fail('denied model', 'no error');
} catch (e) {
  if (!(e instanceof Anthropic.PermissionDeniedError) || e.status !== 403) fail('denied model', String(e));
  if (!String(e.message).includes('not allowed')) fail('denied message', e.message);
}
console.log(JSON.stringify({ ok: true, text, usage: final.usage }));
