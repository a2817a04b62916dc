// The official `openai` npm client, unchanged, against mu proxy's HTTP API (run by
// tests/cli_http_openai.sh with the package installed into a scratch directory).
//   node http_openai.mjs PACKAGE_DIR BASE_URL KEY MODEL
// A non-streaming and a streaming chat completion with the same seed give the same text; a
// text completion works; a wrong key raises the client's AuthenticationError (401). Prints one
// "ok ..." line per check and exits 1 on the first failure.
import { createRequire } from 'node:module';
import path from 'node:path';

const [pkgDir, baseURL, apiKey, model] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(pkgDir), 'package.json'));
const OpenAI = require('openai');

function check(cond, what) {
	if (!cond) {
		console.error(`FAIL: ${what}`);
		process.exit(1);
	}
	console.log(`ok ${what}`);
}

const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
const messages = [{ role: 'user', content: 'Once upon a time' }];

const whole = await client.chat.completions.create({ model, messages, max_tokens: 30, seed: 11, temperature: 0.7 });
const text = whole.choices[0].message.content;
check(whole.object === 'chat.completion' && typeof text === 'string' && text.length > 0, 'non-streaming chat completion');
check(whole.usage.completion_tokens === 30 && whole.usage.total_tokens === whole.usage.prompt_tokens + 30,
	'usage of the non-streaming completion');

const stream = await client.chat.completions.create({ model, messages, max_tokens: 30, seed: 11, temperature: 0.7,
	stream: true });
let streamed = '';
let finish = null;
let chunks = 0;
for await (const chunk of stream) {
	chunks++;
	const ch = chunk.choices[0];
	if (ch) {
		streamed += ch.delta.content ?? '';
		if (ch.finish_reason) finish = ch.finish_reason;
	}
}
check(chunks > 1 && finish === 'length', `streaming chat completion (${chunks} chunks)`);
check(streamed === text, 'the streamed text is the non-streamed text');

const comp = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
check(comp.object === 'text_completion' && comp.choices[0].text.length > 0, 'text completion');

const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === model, 'models list');

const bad = new OpenAI({ apiKey: 'mu-' + '0'.repeat(64), baseURL, maxRetries: 0 });
try {
	await bad.chat.completions.create({ model, messages, max_tokens: 2 });
	check(false, 'a wrong key is refused');
} catch (e) {
	check(e instanceof OpenAI.AuthenticationError && e.status === 401, 'a wrong key raises AuthenticationError (401)');
}
