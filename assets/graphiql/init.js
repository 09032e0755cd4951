// Mounts GraphiQL on the page. Operations go to /graphql on this origin with the headers written
// in GraphiQL's Headers tab, so `{"Authorization": "Bearer <token>"}` there signs them in.
// GraphiQL does not keep those headers in localStorage unless its settings say so.
'use strict';

const fetcher = GraphiQL.createFetcher({ url: new URL('/graphql', window.location.href).href });

ReactDOM.createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, { fetcher, isHeadersEditorEnabled: true }),
);
