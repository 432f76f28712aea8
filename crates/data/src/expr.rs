//! A small parser for user expressions such as `2exp(-x^2)` or `cos(u)*sin(v)`.
//!
//! Written here rather than taken from a crate: the maintained expression crates give silently
//! wrong numbers on ordinary input (`-x^2` as `(-x)^2`, `1/2*x` as 0, `1e-3` misread) and the one
//! that is right is unmaintained; docs/expressions.md has the comparison. The grammar follows the
//! usual mathematical conventions:
//!
//! * precedence, loosest first: `+ -`, `* /`, unary `- +`, `^` (right-associative), so
//!   `-x^2 = -(x^2)` and `2^-x = 2^(-x)`;
//! * a number written directly before a name or `(` is a coefficient binding tighter than `*`
//!   and `/`: `3x`, `2exp(-x^2)`, `2(x+1)`, and `1/2x = 1/(2x)`, `2x^2 = 2(x^2)`;
//! * numbers like `3`, `0.5`, `.5`, `1e-3`;
//! * constants `pi` (`π`), `e`, `tau`;
//! * functions of one argument `sin cos tan asin acos atan sinh cosh tanh exp ln log (natural)
//!   log2 log10 sqrt cbrt abs sign floor ceil round`, of two `min max atan2 pow`.

/// A parsed expression over a fixed list of allowed variables.
#[derive(Clone, Debug)]
pub(crate) struct Expr {
    text: String,
    root: Node,
}

#[derive(Clone, Copy, Debug)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Clone, Debug)]
enum Node {
    Num(f64),
    Var(usize),
    Neg(Box<Node>),
    Bin(Bin, Box<Node>, Box<Node>),
    Call1(fn(f64) -> f64, Box<Node>),
    Call2(fn(f64, f64) -> f64, Box<Node>, Box<Node>),
}

impl Node {
    fn eval(&self, vars: &[f64]) -> f64 {
        match self {
            Node::Num(v) => *v,
            Node::Var(i) => vars.get(*i).copied().unwrap_or(f64::NAN),
            Node::Neg(a) => -a.eval(vars),
            Node::Bin(op, a, b) => {
                let (a, b) = (a.eval(vars), b.eval(vars));
                match op {
                    Bin::Add => a + b,
                    Bin::Sub => a - b,
                    Bin::Mul => a * b,
                    Bin::Div => a / b,
                    Bin::Pow => pow(a, b),
                }
            }
            Node::Call1(f, a) => f(a.eval(vars)),
            Node::Call2(f, a, b) => f(a.eval(vars), b.eval(vars)),
        }
    }
}

/// Integer exponents go through `powi` so that `x^3` is exact and defined for negative x.
fn pow(a: f64, b: f64) -> f64 {
    if b.fract() == 0.0 && b.abs() <= 64.0 {
        a.powi(b as i32)
    } else {
        a.powf(b)
    }
}

fn sign(a: f64) -> f64 {
    if a > 0.0 {
        1.0
    } else if a < 0.0 {
        -1.0
    } else {
        a
    }
}

fn function1(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "exp" => f64::exp,
        "ln" | "log" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "cbrt" => f64::cbrt,
        "abs" => f64::abs,
        "sign" | "signum" => sign,
        "floor" => f64::floor,
        "ceil" => f64::ceil,
        "round" => f64::round,
        _ => return None,
    })
}

fn function2(name: &str) -> Option<fn(f64, f64) -> f64> {
    Some(match name {
        "min" => f64::min,
        "max" => f64::max,
        "atan2" => f64::atan2,
        "pow" => pow,
        _ => return None,
    })
}

fn constant(name: &str) -> Option<f64> {
    Some(match name {
        "pi" | "π" => std::f64::consts::PI,
        "e" => std::f64::consts::E,
        "tau" => std::f64::consts::TAU,
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(char),
    End,
}

/// Tokens with their 1-based character column, for error messages.
fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // An exponent only when digits follow, so that `2exp(x)` and `2e` stay products.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            let s: String = chars[start..i].iter().collect();
            let v: f64 = s.parse().map_err(|_| format!("malformed number '{s}' at column {col}"))?;
            out.push((Tok::Num(v), col));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), col));
        } else if "+-*/^(),".contains(c) {
            out.push((Tok::Op(c), col));
            i += 1;
        } else {
            return Err(format!("unexpected character '{c}' at column {col}"));
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    vars: &'a [&'a str],
    /// How deep the parser has recursed (parentheses, function arguments, signs, exponents).
    depth: usize,
}

/// Parsing and evaluation recurse: these bounds keep both far inside a thread's stack (an expression nested
/// 20,000 deep used to overflow it and abort the process).
const MAX_NESTING: usize = 200;
const MAX_TOKENS: usize = 10_000;

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn col(&self) -> usize {
        self.toks[self.pos].1
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].0.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn describe(t: &Tok) -> String {
        match t {
            Tok::Num(v) => format!("number {v}"),
            Tok::Name(n) => format!("'{n}'"),
            Tok::Op(c) => format!("'{c}'"),
            Tok::End => "end of input".into(),
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        let t = self.peek();
        if *t == Tok::End {
            format!("unexpected end of input; {wanted} was needed")
        } else {
            format!("unexpected {} at column {}; {wanted} was needed", Self::describe(t), self.col())
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if *self.peek() == Tok::Op(c) {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{c}'")))
        }
    }

    fn sum(&mut self) -> Result<Node, String> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Op('+') => Bin::Add,
                Tok::Op('-') => Bin::Sub,
                _ => return Ok(left),
            };
            self.next();
            left = Node::Bin(op, Box::new(left), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Node, String> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op('*') => Bin::Mul,
                Tok::Op('/') => Bin::Div,
                _ => return Ok(left),
            };
            self.next();
            left = Node::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("nested more than {MAX_NESTING} levels deep at column {}", self.col()));
        }
        let node = self.unary_inner();
        self.depth -= 1;
        node
    }

    fn unary_inner(&mut self) -> Result<Node, String> {
        match self.peek() {
            Tok::Op('-') => {
                self.next();
                Ok(Node::Neg(Box::new(self.unary()?)))
            }
            Tok::Op('+') => {
                self.next();
                self.unary()
            }
            _ => self.coefficient(),
        }
    }

    /// `3x`, `2exp(..)`, `2(x+1)`: a number directly followed by a name or `(`.
    fn coefficient(&mut self) -> Result<Node, String> {
        if let Tok::Num(v) = *self.peek() {
            let follows = &self.toks[self.pos + 1].0;
            if matches!(follows, Tok::Name(_) | Tok::Op('(')) {
                self.next();
                let rest = self.power()?;
                return Ok(Node::Bin(Bin::Mul, Box::new(Node::Num(v)), Box::new(rest)));
            }
        }
        self.power()
    }

    fn power(&mut self) -> Result<Node, String> {
        let base = self.atom()?;
        if *self.peek() == Tok::Op('^') {
            self.next();
            // The exponent may carry its own sign (`2^-x`) and is right-associative.
            let exponent = self.unary()?;
            return Ok(Node::Bin(Bin::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let col = self.col();
        match self.peek().clone() {
            Tok::Num(v) => {
                self.next();
                Ok(Node::Num(v))
            }
            Tok::Op('(') => {
                self.next();
                let inner = self.sum()?;
                self.expect(')')?;
                Ok(inner)
            }
            Tok::Name(name) => {
                self.next();
                if *self.peek() == Tok::Op('(') {
                    self.next();
                    let a = self.sum()?;
                    if let Some(f) = function1(&name) {
                        self.expect(')')?;
                        return Ok(Node::Call1(f, Box::new(a)));
                    }
                    if let Some(f) = function2(&name) {
                        self.expect(',')?;
                        let b = self.sum()?;
                        self.expect(')')?;
                        return Ok(Node::Call2(f, Box::new(a), Box::new(b)));
                    }
                    return Err(format!("unknown function '{name}' at column {col}"));
                }
                if let Some(i) = self.vars.iter().position(|v| *v == name) {
                    return Ok(Node::Var(i));
                }
                if let Some(v) = constant(&name) {
                    return Ok(Node::Num(v));
                }
                if function1(&name).is_some() || function2(&name).is_some() {
                    return Err(format!("function '{name}' at column {col} needs parentheses, as in {name}(x)"));
                }
                Err(format!(
                    "unknown variable '{name}' at column {col} (variables: {}; constants: pi, e, tau)",
                    self.vars.join(", ")
                ))
            }
            _ => Err(self.unexpected("a number, variable, function or '('")),
        }
    }
}

impl Expr {
    /// Parses `text` with the variables `allowed` (the slice order is the order of the values
    /// passed to [`Expr::eval`]). On failure returns a one-line reason without the input, which
    /// the caller names.
    pub fn parse(text: &str, allowed: &[&str]) -> Result<Expr, String> {
        if text.trim().is_empty() {
            return Err("the expression is empty".into());
        }
        let toks = tokenize(text)?;
        if toks.len() > MAX_TOKENS {
            return Err(format!("{} tokens is too long; at most {MAX_TOKENS}", toks.len()));
        }
        let mut p = Parser { toks, pos: 0, vars: allowed, depth: 0 };
        let root = p.sum()?;
        if *p.peek() != Tok::End {
            let wanted = if *p.peek() == Tok::Op(')') { "nothing (unbalanced ')')" } else { "an operator" };
            return Err(p.unexpected(wanted));
        }
        Ok(Expr { text: text.to_string(), root })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates with one value per allowed variable.
    pub fn eval(&self, vals: &[f64]) -> f64 {
        self.root.eval(vals)
    }
}

#[cfg(test)]
mod tests {
    use super::Expr;

    fn ev(s: &str, x: f64) -> f64 {
        Expr::parse(s, &["x"]).unwrap_or_else(|e| panic!("{s}: {e}")).eval(&[x])
    }

    #[test]
    fn precedence_follows_mathematics() {
        assert_eq!(ev("-x^2", 3.0), -9.0);
        assert_eq!(ev("2^-x", 1.0), 0.5);
        assert_eq!(ev("2^3^2", 0.0), 512.0);
        assert_eq!(ev("1+2*3-4/2", 0.0), 5.0);
        assert_eq!(ev("(1+2)*3", 0.0), 9.0);
        assert_eq!(ev("--x", 2.0), 2.0);
        assert_eq!(ev("x^3", -2.0), -8.0);
        assert_eq!(ev("2*-x", 2.0), -4.0);
    }

    #[test]
    fn coefficients_numbers_constants_functions() {
        assert_eq!(ev("3x", 2.0), 6.0);
        assert_eq!(ev("2x^2", 3.0), 18.0);
        assert_eq!(ev("1/2x", 2.0), 0.25);
        assert_eq!(ev("2(x+1)", 1.0), 4.0);
        assert_eq!(ev("1e-3*x", 2.0), 0.002);
        assert_eq!(ev(".5 + 2.5E2", 0.0), 250.5);
        assert!((ev("2exp(-x^2)", 1.0) - 2.0 * (-1.0f64).exp()).abs() < 1e-15);
        assert!((ev("2e", 0.0) - 2.0 * std::f64::consts::E).abs() < 1e-15);
        assert!((ev("sin(pi/2) + cos(π) + tau", 0.0) - std::f64::consts::TAU).abs() < 1e-15);
        assert_eq!(ev("max(x, 1) + min(x, 1) + atan2(0, 1)", 3.0), 4.0);
        assert_eq!(ev("sign(x) + abs(x) + floor(x)", -1.5), -1.0 + 1.5 - 2.0);
    }

    #[test]
    fn errors_are_specific() {
        let err = |s: &str| Expr::parse(s, &["u", "v"]).unwrap_err();
        assert!(err("sin(").contains("unexpected end of input"), "{}", err("sin("));
        assert!(err("u +* v").contains("unexpected '*' at column 4"), "{}", err("u +* v"));
        assert!(err("w").contains("unknown variable 'w'"));
        assert!(err("foo(u)").contains("unknown function 'foo'"));
        assert!(err("sin u").contains("needs parentheses") || err("sin u").contains("unexpected"));
        assert!(err("u)").contains("unbalanced"));
        assert!(err("max(u)").contains("','"));
        assert!(err("u $ v").contains("unexpected character '$'"));
        assert!(err("1.2.3").contains("malformed number"));
        assert!(err(" ").contains("empty"));
    }

    mod properties {
        use super::super::Expr;
        use proptest::prelude::*;

        /// Pieces of the expression language, so that random strings are often nearly valid.
        fn token() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                "x",
                "y",
                "(",
                ")",
                "+",
                "-",
                "*",
                "/",
                "^",
                "sin",
                "cos",
                "exp",
                "abs",
                "sqrt",
                "2",
                "0.5",
                "1e308",
                ",",
                " ",
                "pi",
                "e",
                "foo",
                ".",
                "9999999999",
            ])
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,120}") {
                let _ = Expr::parse(&text, &["x"]);
            }

            #[test]
            fn nearly_valid_expressions_parse_and_evaluate_without_panicking(tokens in prop::collection::vec(token(), 0..40), x in any::<f64>()) {
                let text = tokens.concat();
                if let Ok(e) = Expr::parse(&text, &["x", "y"]) {
                    let _ = e.eval(&[x, 0.5]);
                }
            }

            #[test]
            fn the_longest_expressions_parse_evaluate_and_drop_on_a_test_thread(terms in 4000usize..5000) {
                // A sum is a left-deep tree: as deep as it has terms. 10,000 tokens at most.
                let text = vec!["x"; terms].join("+");
                let e = Expr::parse(&text, &["x"]).unwrap();
                prop_assert_eq!(e.eval(&[1.0]), terms as f64);
                let longer = vec!["x"; 5001].join("+");
                prop_assert!(Expr::parse(&longer, &["x"]).unwrap_err().contains("too long"));
            }

            #[test]
            fn deep_nesting_is_refused_or_parsed_without_overflowing_the_stack(depth in 0usize..20_000) {
                let text = format!("{}x{}", "(".repeat(depth), ")".repeat(depth));
                let _ = Expr::parse(&text, &["x"]);
            }
        }
    }
}
