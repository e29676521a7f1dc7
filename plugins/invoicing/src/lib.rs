//! An invoicing endpoint's custom component (see README.md).
//!
//! - `create_invoices` **overrides** the generated tool: it checks that the
//!   invoice's lines add up to its total, fills in `status: "open"` when it
//!   is missing, then runs the generated behaviour (`base`).
//! - `invoice_balance` is a **new** read-only tool: an invoice's total, what
//!   its linked payments (`invoice_payment`) add up to, and the balance.
//!
//! - `void_invoice` is a new tool that cancels an invoice (`store::cancel`)
//!   unless payments are linked to it.
//!
//! Every other tool of the endpoint still comes from the generated layer.

use mcp_factory_guest::store::{self, Record};
use mcp_factory_guest::{Args, Error, Plugin, ToolSpec, base, log};
use serde::Deserialize;
use serde_json::{Value, json};

struct Invoicing;

#[derive(Deserialize)]
struct Line {
    quantity: f64,
    unit_price: f64,
}

#[derive(Deserialize)]
struct NewInvoice {
    total: f64,
    #[serde(default)]
    lines: Vec<Line>,
}

#[derive(Deserialize)]
struct Payment {
    amount: f64,
}

/// Money compares to the cent.
fn cents(x: f64) -> i64 {
    (x * 100.0).round() as i64
}

fn create_invoice(args: Args) -> Result<Value, Error> {
    let mut args = args.into_value();
    let invoice: NewInvoice = serde_json::from_value(args["data"].clone())
        .map_err(|e| Error::InvalidArguments(format!("data: {e}")))?;
    if invoice.lines.is_empty() {
        return Err(Error::business(
            "NO_LINES",
            "an invoice needs at least one line: add data.lines [{description, quantity, unit_price}]",
        ));
    }
    let sum: f64 = invoice
        .lines
        .iter()
        .map(|l| l.quantity * l.unit_price)
        .sum();
    if cents(sum) != cents(invoice.total) {
        return Err(Error::business(
            "TOTAL_MISMATCH",
            format!(
                "the lines add up to {sum:.2} but total is {:.2}; fix the lines or the total",
                invoice.total
            ),
        ));
    }
    if args["data"].get("status").is_none() {
        args["data"]["status"] = json!("open");
    }
    log::info(&format!(
        "creating an invoice of {:.2} with {} lines",
        invoice.total,
        invoice.lines.len()
    ));
    base::call("create_invoices", &args)
}

fn invoice_balance(args: Args) -> Result<Value, Error> {
    #[derive(Deserialize)]
    struct Ask {
        id: String,
    }
    let Ask { id } = args.parse()?;
    let invoice: Record<NewInvoice> = store::get_as("invoices", &id)?;
    let links = store::links("invoices", &invoice.id, "invoice_payment", "outgoing")?;
    let mut paid = 0.0;
    let mut payments = Vec::new();
    for link in links["data"].as_array().into_iter().flatten() {
        let Some(pid) = link["target_id"].as_str() else {
            continue;
        };
        let p: Record<Payment> = store::get_as("payments", pid)?;
        paid += p.data.amount;
        payments.push(p.id);
    }
    Ok(json!({
        "invoice_id": invoice.id,
        "total": invoice.data.total,
        "paid": paid,
        "balance": (cents(invoice.data.total) - cents(paid)) as f64 / 100.0,
        "payments": payments,
    }))
}

fn void_invoice(args: Args) -> Result<Value, Error> {
    #[derive(Deserialize)]
    struct Ask {
        id: String,
    }
    let Ask { id } = args.parse()?;
    let links = store::links("invoices", &id, "invoice_payment", "outgoing")?;
    let paid = links["data"].as_array().map_or(0, Vec::len);
    if paid > 0 {
        return Err(Error::business(
            "HAS_PAYMENTS",
            format!("invoice '{id}' has {paid} payment(s) linked; unlink them before voiding it"),
        ));
    }
    let r = store::cancel("invoices", &id)?;
    Ok(json!({"invoice_id": r.id, "cancelled": r.cancelled}))
}

impl Plugin for Invoicing {
    fn tools() -> Vec<ToolSpec> {
        // Reuse the generated tool's input schema (the collection's JSON
        // Schema) when the endpoint has one.
        let create = base::tool("create_invoices")
            .unwrap_or_else(|| ToolSpec::new("create_invoices", "").input_schema(json!({"type": "object", "properties": {"data": {"type": "object"}}, "required": ["data"]})))
            .describe(
                "Create an invoice. Its lines (quantity × unit_price) must add up to its total; \
                 status defaults to \"open\".",
            );
        vec![
            create,
            ToolSpec::new(
                "invoice_balance",
                "An invoice's total, the payments linked to it (invoice_payment) and the balance still due",
            )
            .input_schema(json!({
                "type": "object",
                "properties": {"id": {"type": "string", "description": "the invoice's id or external id"}},
                "required": ["id"]
            }))
            .read_only(),
            ToolSpec::new(
                "void_invoice",
                "Cancel an invoice that has no payments linked to it",
            )
            .input_schema(json!({
                "type": "object",
                "properties": {"id": {"type": "string"}},
                "required": ["id"]
            }))
            .destructive()
            .idempotent(),
        ]
    }

    fn call(name: &str, args: Args) -> Result<Value, Error> {
        match name {
            "create_invoices" => create_invoice(args),
            "invoice_balance" => invoice_balance(args),
            "void_invoice" => void_invoice(args),
            other => Err(Error::UnknownTool(format!(
                "invoicing has no tool '{other}'"
            ))),
        }
    }
}

mcp_factory_guest::export!(Invoicing);
