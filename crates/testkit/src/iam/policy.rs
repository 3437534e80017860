//! An IAM identity policy, parsed and evaluated as IAM's policy evaluation logic says
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>):
//! an explicit `Deny` wins; otherwise a request is allowed when an `Allow` statement matches
//! its action, its resource and every condition; otherwise it is implicitly denied.
//!
//! Supported: `Action`/`NotAction` and `Resource`/`NotResource` with `*` and `?` wildcards
//! (actions case-insensitively; a resource `*` may cross the colons of an ARN, as the
//! `Resource` element's page says:
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html>),
//! and the condition operators of
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>
//! that ec2spot's policy uses and their relatives: `StringEquals`, `StringNotEquals`,
//! `StringEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `Bool`, `Null`, `ArnEquals`,
//! `ArnLike`, `ArnNotEquals`, `ArnNotLike`, each with `...IfExists`, and the set qualifiers
//! `ForAllValues:` / `ForAnyValue:`
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html>).
//! An operator the evaluator does not know makes the statement never match (and is listed by
//! [`Policy::unsupported`] so a test can refuse such a policy).

use std::collections::BTreeMap;

use serde_json::Value;

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Refuses, whatever else grants.
    Deny,
}

/// A list of patterns, or every value except those (`NotAction`, `NotResource`).
#[derive(Debug, Clone)]
struct Patterns {
    not: bool,
    list: Vec<String>,
}

/// The operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    Bool,
    Null,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "StringEquals" => Op::StringEquals,
            "StringNotEquals" => Op::StringNotEquals,
            "StringEqualsIgnoreCase" => Op::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Op::StringNotEqualsIgnoreCase,
            "StringLike" => Op::StringLike,
            "StringNotLike" => Op::StringNotLike,
            "Bool" => Op::Bool,
            "Null" => Op::Null,
            "ArnEquals" => Op::ArnEquals,
            "ArnLike" => Op::ArnLike,
            "ArnNotEquals" => Op::ArnNotEquals,
            "ArnNotLike" => Op::ArnNotLike,
            _ => return None,
        })
    }

    /// Negated operators hold when the value matches none of the policy's values (and when
    /// the key is missing).
    fn negated(self) -> bool {
        matches!(
            self,
            Op::StringNotEquals
                | Op::StringNotEqualsIgnoreCase
                | Op::StringNotLike
                | Op::ArnNotEquals
                | Op::ArnNotLike
        )
    }

    /// Whether the context value `v` matches the policy value `p` (the positive form).
    fn matches(self, p: &str, v: &str) -> bool {
        match self {
            Op::StringEquals | Op::StringNotEquals => p == v,
            Op::StringEqualsIgnoreCase | Op::StringNotEqualsIgnoreCase => p.eq_ignore_ascii_case(v),
            Op::StringLike | Op::StringNotLike => glob(p, v, false),
            Op::Bool => p.eq_ignore_ascii_case(v),
            Op::ArnEquals | Op::ArnNotEquals => p == v,
            Op::ArnLike | Op::ArnNotLike => arn_like(p, v),
            Op::Null => unreachable!("Null is evaluated on presence"),
        }
    }
}

/// `ForAllValues:` or `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    ForAll,
    ForAny,
}

/// One condition: operator, key, the policy's values.
#[derive(Debug, Clone)]
struct Cond {
    /// As written (`ForAllValues:StringNotLike`), for messages.
    written: String,
    op: Option<Op>,
    qualifier: Option<Qualifier>,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

impl Cond {
    fn holds(&self, ctx: &Context) -> bool {
        let Some(op) = self.op else {
            return false;
        };
        let present = ctx.get(&self.key);
        if op == Op::Null {
            // `Null: true` — the key is absent; `false` — present (an empty set is absent).
            let absent = present.is_none_or(|v| v.is_empty());
            return self
                .values
                .iter()
                .any(|p| p.eq_ignore_ascii_case("true") == absent);
        }
        let one = |v: &str| {
            let any = self.values.iter().any(|p| op.matches(p, v));
            if op.negated() { !any } else { any }
        };
        match (self.qualifier, present) {
            // ForAllValues: true when every value of the set passes — and for an empty or
            // missing set.
            (Some(Qualifier::ForAll), None) => true,
            (Some(Qualifier::ForAll), Some(vs)) => vs.iter().all(|v| one(v)),
            // ForAnyValue: at least one value passes; a missing set never does.
            (Some(Qualifier::ForAny), None) => false,
            (Some(Qualifier::ForAny), Some(vs)) => vs.iter().any(|v| one(v)),
            // A single-valued key missing: `...IfExists` holds, a negated operator holds, a
            // positive one does not.
            (None, None) => self.if_exists || op.negated(),
            (None, Some([])) => self.if_exists || op.negated(),
            (None, Some(vs)) => {
                if op.negated() {
                    vs.iter().all(|v| one(v))
                } else {
                    vs.iter().any(|v| one(v))
                }
            }
        }
    }
}

/// One statement.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Its `Sid` (empty when it has none).
    pub sid: String,
    /// `Allow` or `Deny`.
    pub effect: Effect,
    action: Patterns,
    resource: Patterns,
    conditions: Vec<Cond>,
}

impl Statement {
    fn matches_action(&self, action: &str) -> bool {
        let any = self.action.list.iter().any(|p| glob(p, action, true));
        any != self.action.not
    }

    fn matches_resource(&self, resource: &str) -> bool {
        let any = self.resource.list.iter().any(|p| glob(p, resource, false));
        any != self.resource.not
    }

    /// The first condition that does not hold, if one does not.
    fn failed_condition(&self, ctx: &Context) -> Option<&Cond> {
        self.conditions.iter().find(|c| !c.holds(ctx))
    }
}

/// A policy: its statements.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The statements, in order.
    pub statements: Vec<Statement>,
}

/// The condition context of one authorisation: key (case-insensitive) → values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    keys: BTreeMap<String, (String, Vec<String>)>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets `key` to one value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Context {
        self.set_all(key, vec![value.into()])
    }

    /// Sets `key` to a set of values (a multivalued key such as `aws:TagKeys`).
    pub fn set_all(&mut self, key: &str, values: Vec<String>) -> &mut Context {
        self.keys
            .insert(key.to_ascii_lowercase(), (key.to_string(), values));
        self
    }

    /// The values of `key`, if it is present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys
            .get(&key.to_ascii_lowercase())
            .map(|(_, v)| v.as_slice())
    }

    /// The keys as they were set, with their values.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.keys.values().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// What the policy decides about one action on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An `Allow` statement (its Sid) matches.
    Allow(String),
    /// A `Deny` statement (its Sid) matches.
    ExplicitDeny(String),
    /// Nothing allows it; the statements that matched action and resource and the
    /// condition each failed on (`Sid: operator key`), to explain.
    ImplicitDeny(Vec<String>),
}

impl Decision {
    /// Whether it is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// The strings of a JSON string or array of strings (numbers and booleans as text).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

impl Policy {
    /// Parses a policy document.
    pub fn parse(doc: &Value) -> Result<Policy, String> {
        let statements = match &doc["Statement"] {
            Value::Array(a) => a.clone(),
            Value::Object(_) => vec![doc["Statement"].clone()],
            _ => return Err("no Statement".into()),
        };
        let mut out = Vec::new();
        for (i, s) in statements.iter().enumerate() {
            let sid = s["Sid"].as_str().unwrap_or_default().to_string();
            let effect = match s["Effect"].as_str() {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                e => return Err(format!("statement {i}: Effect {e:?}")),
            };
            let pick = |pos: &str, neg: &str| -> Result<Patterns, String> {
                match (s.get(pos), s.get(neg)) {
                    (Some(v), None) => Ok(Patterns {
                        not: false,
                        list: strings(v),
                    }),
                    (None, Some(v)) => Ok(Patterns {
                        not: true,
                        list: strings(v),
                    }),
                    _ => Err(format!("statement {i}: exactly one of {pos} / {neg}")),
                }
            };
            let action = pick("Action", "NotAction")?;
            let resource = pick("Resource", "NotResource")?;
            let mut conditions = Vec::new();
            if let Some(Value::Object(ops)) = s.get("Condition") {
                for (written, keys) in ops {
                    let (qualifier, rest) = if let Some(r) = written.strip_prefix("ForAllValues:") {
                        (Some(Qualifier::ForAll), r)
                    } else if let Some(r) = written.strip_prefix("ForAnyValue:") {
                        (Some(Qualifier::ForAny), r)
                    } else {
                        (None, written.as_str())
                    };
                    let (name, if_exists) = match rest.strip_suffix("IfExists") {
                        Some(n) => (n, true),
                        None => (rest, false),
                    };
                    let Value::Object(keys) = keys else {
                        return Err(format!("statement {i}: {written} is not an object"));
                    };
                    for (key, values) in keys {
                        conditions.push(Cond {
                            written: written.clone(),
                            op: Op::parse(name),
                            qualifier,
                            if_exists,
                            key: key.clone(),
                            values: strings(values),
                        });
                    }
                }
            }
            out.push(Statement {
                sid,
                effect,
                action,
                resource,
                conditions,
            });
        }
        Ok(Policy { statements: out })
    }

    /// The condition operators the evaluator does not know (none for ec2spot's policy).
    pub fn unsupported(&self) -> Vec<String> {
        self.statements
            .iter()
            .flat_map(|s| &s.conditions)
            .filter(|c| c.op.is_none())
            .map(|c| c.written.clone())
            .collect()
    }

    /// Decides `action` (`ec2:RunInstances`) on `resource` (an ARN, or `*`) in `ctx`.
    pub fn evaluate(&self, action: &str, resource: &str, ctx: &Context) -> Decision {
        let applying = |s: &&Statement| s.matches_action(action) && s.matches_resource(resource);
        if let Some(deny) = self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Deny)
            .filter(applying)
            .find(|s| s.failed_condition(ctx).is_none())
        {
            return Decision::ExplicitDeny(deny.sid.clone());
        }
        let mut why = Vec::new();
        for s in self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .filter(applying)
        {
            match s.failed_condition(ctx) {
                None => return Decision::Allow(s.sid.clone()),
                Some(c) => why.push(format!("{}: {} {}", s.sid, c.written, c.key)),
            }
        }
        Decision::ImplicitDeny(why)
    }
}

/// Whether `text` matches `pattern` (`*` any run, `?` one character).
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let norm = |s: &str| -> Vec<char> {
        if ignore_case {
            s.to_ascii_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, t) = (norm(pattern), norm(text));
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// `ArnLike`: each of the six colon-separated segments matched on its own (the resource part
/// keeps its colons).
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == a.len() && p.iter().zip(&a).all(|(p, a)| glob(p, a, false))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(statement: Value) -> Policy {
        Policy::parse(&json!({ "Version": "2012-10-17", "Statement": [statement] })).unwrap()
    }

    fn ctx(pairs: &[(&str, &[&str])]) -> Context {
        let mut c = Context::new();
        for (k, vs) in pairs {
            c.set_all(k, vs.iter().map(|v| v.to_string()).collect());
        }
        c
    }

    const I: &str = "arn:aws:ec2:us-east-1:123456789012:instance/i-1";

    #[test]
    fn wildcards_in_actions_and_resources() {
        let p = one(json!({"Effect": "Allow", "Action": "ec2:Describe*",
            "Resource": "arn:*:ec2:*:*:instance/*"}));
        assert!(
            p.evaluate("ec2:DescribeInstances", I, &Context::new())
                .allowed()
        );
        assert!(
            p.evaluate("EC2:describeinstances", I, &Context::new())
                .allowed(),
            "actions ignore case"
        );
        assert!(!p.evaluate("ec2:RunInstances", I, &Context::new()).allowed());
        assert!(
            !p.evaluate(
                "ec2:DescribeInstances",
                "arn:aws:ec2:us-east-1:123456789012:volume/v-1",
                &Context::new()
            )
            .allowed()
        );
        assert!(
            !p.evaluate("ec2:DescribeInstances", "*", &Context::new())
                .allowed(),
            "a scoped resource never matches `*`"
        );
        let q = one(json!({"Effect": "Allow", "Action": "ec2:Run?nstances", "Resource": "*"}));
        assert!(q.evaluate("ec2:RunInstances", I, &Context::new()).allowed());
        assert!(
            q.evaluate("ec2:DescribeVpcs", "*", &Context::new()) == Decision::ImplicitDeny(vec![])
        );
        assert!(glob(
            "arn:aws:ec2:*:*:instance/*",
            "arn:aws:ec2:us-east-1:1:instance/i-1",
            false
        ));
        assert!(!glob(
            "arn:aws:ec2:*:*:instance/*",
            "arn:aws-cn:ec2:cn-north-1:1:instance/i-1",
            false
        ));
        assert!(glob(
            "arn:*:ec2:*:*:instance/*",
            "arn:aws-cn:ec2:cn-north-1:1:instance/i-1",
            false
        ));
        assert!(glob(
            "arn:aws:ec2:*::image/*",
            "arn:aws:ec2:us-east-1::image/ami-1",
            false
        ));
        assert!(!glob(
            "arn:aws:ec2:*::image/*",
            "arn:aws:ec2:us-east-1:123:image/ami-1",
            false
        ));
    }

    #[test]
    fn not_action_and_not_resource() {
        let p = one(
            json!({"Effect": "Allow", "NotAction": "ec2:Terminate*", "NotResource": "arn:aws:ec2:*:*:volume/*"}),
        );
        assert!(
            p.evaluate("ec2:StopInstances", I, &Context::new())
                .allowed()
        );
        assert!(
            !p.evaluate("ec2:TerminateInstances", I, &Context::new())
                .allowed()
        );
        assert!(
            !p.evaluate(
                "ec2:StopInstances",
                "arn:aws:ec2:us-east-1:1:volume/vol-1",
                &Context::new()
            )
            .allowed()
        );
    }

    #[test]
    fn explicit_deny_wins() {
        let p = Policy::parse(&json!({"Statement": [
            {"Sid": "All", "Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
            {"Sid": "NoProd", "Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*",
             "Condition": {"StringEquals": {"ec2:ResourceTag/env": "prod"}}}
        ]}))
        .unwrap();
        assert_eq!(
            p.evaluate(
                "ec2:TerminateInstances",
                I,
                &ctx(&[("ec2:ResourceTag/env", &["dev"])])
            ),
            Decision::Allow("All".into())
        );
        assert_eq!(
            p.evaluate(
                "ec2:TerminateInstances",
                I,
                &ctx(&[("ec2:ResourceTag/env", &["prod"])])
            ),
            Decision::ExplicitDeny("NoProd".into())
        );
    }

    #[test]
    fn string_operators() {
        let eq = one(
            json!({"Sid": "S", "Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateFleet"]}}}),
        );
        assert!(
            eq.evaluate(
                "ec2:CreateTags",
                I,
                &ctx(&[("ec2:CreateAction", &["CreateFleet"])])
            )
            .allowed()
        );
        assert!(
            eq.evaluate(
                "ec2:CreateTags",
                I,
                &ctx(&[("EC2:createaction", &["CreateFleet"])])
            )
            .allowed(),
            "key names ignore case"
        );
        assert!(
            !eq.evaluate(
                "ec2:CreateTags",
                I,
                &ctx(&[("ec2:CreateAction", &["createfleet"])])
            )
            .allowed(),
            "values do not"
        );
        assert_eq!(
            eq.evaluate("ec2:CreateTags", I, &Context::new()),
            Decision::ImplicitDeny(vec!["S: StringEquals ec2:CreateAction".into()])
        );
        let ne = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestTag/a": "x"}}}));
        assert!(
            ne.evaluate("a", "*", &ctx(&[("aws:RequestTag/a", &["y"])]))
                .allowed()
        );
        assert!(
            !ne.evaluate("a", "*", &ctx(&[("aws:RequestTag/a", &["x"])]))
                .allowed()
        );
        assert!(
            ne.evaluate("a", "*", &Context::new()).allowed(),
            "a negated operator holds on a missing key"
        );
        let like = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringLike": {"kms:ViaService": ["ec2.*.amazonaws.com", "ec2.*.amazonaws.com.cn"]}}}));
        assert!(
            like.evaluate(
                "kms:Decrypt",
                "*",
                &ctx(&[("kms:ViaService", &["ec2.us-gov-west-1.amazonaws.com"])])
            )
            .allowed()
        );
        assert!(
            like.evaluate(
                "kms:Decrypt",
                "*",
                &ctx(&[("kms:ViaService", &["ec2.cn-north-1.amazonaws.com.cn"])])
            )
            .allowed()
        );
        assert!(
            !like
                .evaluate(
                    "kms:Decrypt",
                    "*",
                    &ctx(&[("kms:ViaService", &["s3.us-east-1.amazonaws.com"])])
                )
                .allowed()
        );
        assert!(!like.evaluate("kms:Decrypt", "*", &Context::new()).allowed());
        let ifx = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringEqualsIfExists": {"ec2:InstanceType": "t3.micro"}}}));
        assert!(ifx.evaluate("a", "*", &Context::new()).allowed());
        assert!(
            ifx.evaluate("a", "*", &ctx(&[("ec2:InstanceType", &["t3.micro"])]))
                .allowed()
        );
        assert!(
            !ifx.evaluate("a", "*", &ctx(&[("ec2:InstanceType", &["m5.large"])]))
                .allowed()
        );
        let ic = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringEqualsIgnoreCase": {"aws:RequestTag/a": "X"}}}));
        assert!(
            ic.evaluate("a", "*", &ctx(&[("aws:RequestTag/a", &["x"])]))
                .allowed()
        );
    }

    #[test]
    fn set_qualifiers() {
        let all = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": ["ec2spot:*"]}}}));
        assert!(
            all.evaluate("a", "*", &ctx(&[("aws:TagKeys", &["team", "env"])]))
                .allowed()
        );
        assert!(
            !all.evaluate(
                "a",
                "*",
                &ctx(&[("aws:TagKeys", &["team", "ec2spot:machine-id"])])
            )
            .allowed()
        );
        assert!(
            all.evaluate("a", "*", &Context::new()).allowed(),
            "ForAllValues holds on a missing set"
        );
        let any = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}}));
        assert!(
            any.evaluate("a", "*", &ctx(&[("aws:TagKeys", &["team", "env"])]))
                .allowed()
        );
        assert!(
            !any.evaluate("a", "*", &ctx(&[("aws:TagKeys", &["team"])]))
                .allowed()
        );
        assert!(
            !any.evaluate("a", "*", &Context::new()).allowed(),
            "ForAnyValue fails on a missing set"
        );
    }

    #[test]
    fn null_bool_and_arn_operators() {
        let null = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"Null": {"ec2:ResourceTag/ec2spot:machine-id": "false"}}}));
        assert!(
            null.evaluate(
                "a",
                I,
                &ctx(&[("ec2:ResourceTag/ec2spot:machine-id", &["m"])])
            )
            .allowed()
        );
        assert!(
            !null
                .evaluate("a", I, &ctx(&[("ec2:ResourceTag/other", &["m"])]))
                .allowed()
        );
        let absent = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"Null": {"aws:RequestTag/x": "true"}}}));
        assert!(absent.evaluate("a", I, &Context::new()).allowed());
        assert!(
            !absent
                .evaluate("a", I, &ctx(&[("aws:RequestTag/x", &["1"])]))
                .allowed()
        );
        let b = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}));
        assert!(
            b.evaluate(
                "kms:CreateGrant",
                "*",
                &ctx(&[("kms:GrantIsForAWSResource", &["true"])])
            )
            .allowed()
        );
        assert!(
            !b.evaluate(
                "kms:CreateGrant",
                "*",
                &ctx(&[("kms:GrantIsForAWSResource", &["false"])])
            )
            .allowed()
        );
        assert!(
            !b.evaluate("kms:CreateGrant", "*", &Context::new())
                .allowed()
        );
        let arn = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"ArnLike": {"ec2:InstanceProfile": "arn:*:iam::*:instance-profile/runner-*"}}}));
        assert!(
            arn.evaluate(
                "a",
                "*",
                &ctx(&[(
                    "ec2:InstanceProfile",
                    &["arn:aws-us-gov:iam::1:instance-profile/runner-a"]
                )])
            )
            .allowed()
        );
        assert!(
            !arn.evaluate(
                "a",
                "*",
                &ctx(&[("ec2:InstanceProfile", &["arn:aws:iam::1:role/runner-a"])])
            )
            .allowed()
        );
        let not_arn = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"ArnNotLike": {"ec2:InstanceProfile": "arn:*:iam::*:instance-profile/admin"}}}));
        assert!(not_arn.evaluate("a", "*", &Context::new()).allowed());
        assert!(
            !not_arn
                .evaluate(
                    "a",
                    "*",
                    &ctx(&[(
                        "ec2:InstanceProfile",
                        &["arn:aws:iam::1:instance-profile/admin"]
                    )])
                )
                .allowed()
        );
    }

    #[test]
    fn every_condition_must_hold_and_unknown_operators_never_do() {
        let p = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"Null": {"ec2:ResourceTag/a": "false"},
                          "ForAllValues:StringNotLike": {"aws:TagKeys": ["ec2spot:*"]}}}));
        assert!(
            p.evaluate(
                "a",
                "*",
                &ctx(&[("ec2:ResourceTag/a", &["1"]), ("aws:TagKeys", &["x"])])
            )
            .allowed()
        );
        assert!(
            !p.evaluate("a", "*", &ctx(&[("aws:TagKeys", &["x"])]))
                .allowed()
        );
        let q = one(json!({"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"NumericLessThan": {"a": "1"}}}));
        assert_eq!(q.unsupported(), ["NumericLessThan"]);
        assert!(!q.evaluate("a", "*", &ctx(&[("a", &["0"])])).allowed());
    }
}
