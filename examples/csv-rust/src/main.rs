use std::io::{self, BufRead};
// src/main.rs
#[allow(dead_code)]
struct DataRecord {
    fields: Vec<String>,
}
#[allow(dead_code)]
struct DataSheet {
    headers: Vec<String>,
    rows: Vec<DataRecord>,
}

// src/main.rs
fn split_str(s: String) -> Vec<String> {
    s.split(',').map(str::to_string).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = std::fs::File::open("./example.csv")?;
    let reader = io::BufReader::new(file);
    let mut lines = reader.lines();
    let sheet = DataSheet {
        headers: split_str(lines.next().ok_or("empty header")??),
        rows: lines
            .map(|l| DataRecord {
                fields: split_str(l.unwrap()),
            })
            .collect(),
    };
    Ok(())
}
