import { operations } from "./handler.ts";
import { spec } from "./spec.ts";
import { serveFunction } from "../_shared/http/pipeline.ts";

Deno.serve(serveFunction("grants", spec, operations));
