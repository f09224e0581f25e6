// The official Elasticsearch JavaScript client pointed at `ssi-plugin serve` in front of Elasticsearch: it refuses
// any answer that is not Elasticsearch's, so an ssi search passing here is one the client takes for the cluster's own.
// Usage: PROXY_URL=http://127.0.0.1:9280 INDEX=images node elastic_client.mjs  (prints one JSON object)
import { Client, errors } from '@elastic/elasticsearch';

const client = new Client({ node: process.env.PROXY_URL });
const index = process.env.INDEX;

const ssi = await client.search({ index, query: { ssi: { query: 'dog', k: 5 } }, size: 2 }, { meta: true });
const filtered = await client.search({
  index,
  query: { bool: { must: [{ ssi: { query: 'dog' } }], must_not: [{ match: { caption: 'beach' } }] } },
});
let refused = null;
try {
  await client.search({ index, query: { ssi: { query: 'dog' } }, collapse: { field: 'caption' } });
} catch (error) {
  if (!(error instanceof errors.ResponseError)) throw error;
  refused = { status: error.meta.statusCode, type: error.meta.body.error.type, reason: error.meta.body.error.reason };
}
await client.close();

console.log(JSON.stringify({
  ssi: { status: ssi.statusCode, product: ssi.headers['x-elastic-product'], body: ssi.body },
  filtered: filtered.hits.hits.map((hit) => hit._source.caption),
  refused,
}));
