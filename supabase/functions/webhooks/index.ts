import { operations } from "./handler.ts";
import { spec } from "./spec.ts";
import { serveFunction } from "../_shared/http/pipeline.ts";
import { withSweep } from "./sweep.ts";

Deno.serve(withSweep(serveFunction("webhooks", spec, operations)));
