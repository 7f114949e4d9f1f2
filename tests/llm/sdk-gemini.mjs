// SPDX-License-Identifier: Apache-2.0
// Google's Gen AI SDK (what Gemini CLI uses) against orch's in-jail endpoint
// (GOOGLE_GEMINI_BASE_URL), with a placeholder key: generateContent, a stream, the model
// list, countTokens and a denied model.
import { GoogleGenAI } from '@google/genai';

const fail = (what, got) => {
  console.error(`FAIL ${what}: ${typeof got === 'string' ? got : JSON.stringify(got)}`);
  process.exit(1);
};
const ai = new GoogleGenAI({
  apiKey: 'orch-placeholder-key',
  httpOptions: { baseUrl: process.env.GOOGLE_GEMINI_BASE_URL },
});
const expected = 'Hello from the fake upstream.';
const contents = 'Say hello';

const r = await ai.models.generateContent({ model: 'gemini-2.5-pro', contents });
if (r.text !== expected) fail('generateContent', r);
if (!(r.usageMetadata?.candidatesTokenCount > 0)) fail('usage', r.usageMetadata);

const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-pro', contents });
let text = '';
let usage = null;
for await (const chunk of stream) {
  text += chunk.text ?? '';
  if (chunk.usageMetadata) usage = chunk.usageMetadata;
}
if (text !== expected) fail('stream text', text);
if (!usage || usage.candidatesTokenCount !== 12) fail('stream usage', usage);

const names = [];
for await (const m of await ai.models.list()) names.push(m.name);
if (!names.includes('models/gemini-2.5-pro')) fail('models.list', names);

const n = await ai.models.countTokens({ model: 'gemini-2.5-pro', contents });
if (!(n.totalTokens > 0)) fail('countTokens', n);

try {
  await ai.models.generateContent({ model: 'gemini-9-ultra', contents });
  fail('denied model', 'no error');
} catch (e) {
  if (!String(e).includes('403') && e.status !== 403) fail('denied model', String(e));
}
console.log(JSON.stringify({ ok: true, text, usage }));
