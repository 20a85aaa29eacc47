// An express app. There is no shell in the image, so no "npm start": the image
// runs "node /app/server.js" directly.
const express = require("express");
const os = require("os");

const app = express();
const port = Number(process.env.PORT || 8080);

app.get("/", (req, res) => {
  res.type("text/plain").send(`hello from express on node ${process.versions.node} as uid ${os.userInfo().uid}\n`);
});

// An HTTP probe for Kubernetes or podman: no shell needed.
app.get("/healthz", (req, res) => res.json({ status: "ok" }));

app.listen(port, "0.0.0.0", () => console.log(`listening on ${port}`));
process.on("SIGTERM", () => process.exit(0));
