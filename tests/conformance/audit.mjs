// Runs every graphql-http server audit (the GraphQL over HTTP conformance suite) against a URL
// and prints one line per audit: status, id, name, and the reason when it did not pass.
//
//   node tests/conformance/audit.mjs http://127.0.0.1:8000/graphql
//
// Exits 1 when any audit ends in `error` (a MUST broken) or `warn` (a SHOULD broken), or cannot
// run at all; `notice` (a MAY not taken) is reported but allowed. Exits 2 on a usage error.

import { serverAudits } from 'graphql-http';

/** How long one audit request may take before it counts as failed. */
const REQUEST_TIMEOUT_MS = 10_000;
/** How much of a failing response's body the report shows. */
const BODY_EXCERPT_CHARS = 300;

const url = process.argv[2];
if (!url || !URL.canParse(url)) {
  console.error('usage: node audit.mjs <GraphQL endpoint URL>');
  process.exit(2);
}

/** `fetch` with a time limit, so a server that hangs fails the audit instead of freezing it. */
function fetchWithTimeout(input, init = {}) {
  return fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
}

/** What a failing response said, when its body was not read by the audit already. */
async function describe(response) {
  if (!response) return '';
  let excerpt = '';
  if (!response.bodyUsed) {
    const text = await response.text().catch(() => '');
    excerpt = text.length > BODY_EXCERPT_CHARS ? `${text.slice(0, BODY_EXCERPT_CHARS)}…` : text;
  }
  const contentType = response.headers.get('content-type') ?? 'none';
  return `\n      got ${response.status} (content-type: ${contentType})${excerpt ? ` ${excerpt}` : ''}`;
}

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const { id, name, fn } of serverAudits({ url, fetchFn: fetchWithTimeout })) {
  let result;
  try {
    result = await fn();
  } catch (failure) {
    // The audit could not run (connection refused, timeout, ...): that is a failure too.
    const cause = failure?.cause ? ` (${failure.cause.code ?? failure.cause})` : '';
    result = { id, name, status: 'error', reason: `did not run: ${failure}${cause}` };
  }
  counts[result.status] += 1;
  const line = `${result.status.toUpperCase().padEnd(6)} ${result.id} ${result.name}`;
  if (result.status === 'ok') {
    console.log(line);
  } else {
    console.log(`${line}\n      ${result.reason}${await describe(result.response)}`);
  }
}

const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
console.log(
  `\n${total} audits against ${url}: ${counts.ok} ok, ${counts.notice} notice, ` +
    `${counts.warn} warn, ${counts.error} error`,
);
process.exit(counts.warn + counts.error === 0 ? 0 : 1);
