// Vite builds the UI into the directory that crates/api/build.rs passes with --outDir; the
// dozor binary embeds it. `npm run dev` serves it with the API proxied to a local dozor.
import { defineConfig } from "vite";

export default defineConfig({
  build: {
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 300,
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:9470",
      "/metrics": "http://127.0.0.1:9470",
    },
  },
});
