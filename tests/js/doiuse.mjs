// Check an email's HTML against caniemail's data: node doiuse.mjs FILE CLIENT-GLOB...
// Prints doIUseEmail's result as JSON ({success, errors, notes}); tests/test_email_clients.py reads it.
import { readFileSync } from "node:fs";
import { doIUseEmail } from "@jsx-email/doiuse-email";

const [file, ...clients] = process.argv.slice(2);
const result = doIUseEmail(readFileSync(file, "utf8"), { emailClients: clients });
process.stdout.write(JSON.stringify(result, null, 2) + "\n");
