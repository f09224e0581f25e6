// Searchkit's API (what an InstantSearch frontend calls) pointed at `ssi-plugin serve`, its query hook sending an ssi
// clause, with one facet (ssi.scene) and one refined filter (ssi.objects). Prints the results as JSON.
// Usage: PROXY_URL=http://127.0.0.1:9280 INDEX=images QUERY='a dog' FILTER=dog node searchkit_check.mjs
import Client from '@searchkit/api';

const client = Client({
  connection: { host: process.env.PROXY_URL },
  search_settings: {
    search_attributes: ['caption'],
    result_attributes: ['caption'],
    facet_attributes: [
      { attribute: 'scene', field: 'ssi.scene', type: 'string' },
      { attribute: 'objects', field: 'ssi.objects', type: 'string' },
    ],
  },
});
const ssi = { getQuery: (query) => ({ ssi: { query } }) };
const index = process.env.INDEX;
const ask = (params) => client.handleRequest([{ indexName: index, params: { query: process.env.QUERY, hitsPerPage: 10, ...params } }], ssi);

const plain = await ask({ facets: ['scene'] });
const filtered = await ask({ facets: ['scene'], facetFilters: [[`objects:${process.env.FILTER}`]] });
const summary = (answer) => ({
  ids: answer.results[0].hits.map((hit) => hit.objectID),
  nbHits: answer.results[0].nbHits,
  facets: answer.results[0].facets,
});
console.log(JSON.stringify({ plain: summary(plain), filtered: summary(filtered) }));
