// The official OpenSearch JavaScript client pointed at `ssi-plugin serve`:
// a normal search, an ssi search, and an ssi clause with an unknown field.
// Usage: PROXY_URL=http://127.0.0.1:9280 INDEX=images node serve_client.mjs  (prints one JSON object)
import { Client, errors } from '@opensearch-project/opensearch';

const client = new Client({ node: process.env.PROXY_URL });
const index = process.env.INDEX;

const normal = await client.search({ index, body: { query: { match: { caption: 'dog' } } } });
const ssi = await client.search({ index, body: { query: { ssi: { query: 'dog', k: 5 } }, size: 2 } });
let refused = null;
try {
  await client.search({ index, body: { query: { ssi: { query: 'dog', colour: 'red' } } } });
} catch (error) {
  if (!(error instanceof errors.ResponseError)) throw error;
  refused = { status: error.meta.statusCode, type: error.meta.body.error.type, reason: error.meta.body.error.reason };
}
await client.close();

console.log(JSON.stringify({ normal: { status: normal.statusCode, body: normal.body }, ssi: { status: ssi.statusCode, body: ssi.body }, refused }));
