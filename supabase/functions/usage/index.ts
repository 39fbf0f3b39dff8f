import { operations } from "./handler.ts";
import { serveFunction } from "../_shared/http/pipeline.ts";

Deno.serve(serveFunction("usage", operations));
