//! The look-alikes' metadata tables, with the published file names, header
//! lines and value spellings. Values are drawn per patient, lesion or image
//! seed, so all images of a lesion share its age, sex and site. No generated
//! value holds a comma or a quote, so rows are written without quoting.

use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{draw, person, rng_for, Layout, Person, Row};
use crate::error::{Error, Result};

pub(super) const HAM_HEADER: &str = "lesion_id,image_id,dx,dx_type,age,sex,localization";
pub(super) const ISIC2019_TRUTH_HEADER: &str = "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK";
pub(super) const ISIC2019_META_HEADER: &str = "image,age_approx,anatom_site_general,lesion_id,sex";
pub(super) const ISIC2020_HEADER: &str = "image_name,patient_id,sex,age_approx,\
    anatom_site_general_challenge,diagnosis,benign_malignant,target";
pub(super) const PAD_HEADER: &str = "patient_id,lesion_id,smoke,drink,background_father,\
    background_mother,age,pesticide,gender,skin_cancer_history,cancer_history,has_piped_water,\
    has_sewage_system,fitspatrick,region,diameter_1,diameter_2,diagnostic,itch,grew,hurt,\
    changed,bleed,elevation,img_id,biopsed";

/// Picks one comma-separated item (an empty item is an empty cell; repeats
/// weight an item).
fn pick<'a>(items: &'a str, rng: &mut ChaCha8Rng) -> &'a str {
    let items: Vec<&str> = items.split(',').collect();
    items[rng.gen_range(0..items.len())]
}

fn age(p: &Person) -> String {
    p.age.map(|a| format!("{a}.0")).unwrap_or_default()
}

fn sex(p: &Person) -> &'static str {
    if p.male {
        "male"
    } else {
        "female"
    }
}

fn class(layout: Layout, r: &Row) -> &'static str {
    layout.classes().0[r.class]
}

fn ham(seed: u64, r: &Row) -> String {
    let (p, mut rng) = (person(seed, r.patient), rng_for(seed, 4, r.lesion));
    let dx = class(Layout::Ham10000, r);
    let dx_type = match dx {
        "mel" | "bcc" | "akiec" => "histo",
        "nv" => pick("follow_up,follow_up,histo,consensus", &mut rng),
        _ => pick("histo,histo,consensus,confocal", &mut rng),
    };
    let sex = if rng.gen_bool(0.01) {
        "unknown"
    } else {
        sex(&p)
    };
    let sites = "back,lower extremity,trunk,upper extremity,abdomen,face,chest,foot,unknown,\
        neck,scalp,hand,ear,genital,acral";
    let site = pick(sites, &mut rng);
    let lesion_id = format!("HAM_{:07}", (r.lesion * 7919 + 118) % 10_000_000);
    let age = age(&p);
    format!("{lesion_id},{},{dx},{dx_type},{age},{sex},{site}", r.cell)
}

/// Ground truth (one-hot `1.0`/`0.0`, UNK never set) and metadata rows.
fn isic2019(seed: u64, r: &Row) -> (String, String) {
    let hot: Vec<&str> = (0..9)
        .map(|c| if c == r.class { "1.0" } else { "0.0" })
        .collect();
    let truth = format!("{},{}", r.cell, hot.join(","));
    let (p, mut rng) = (person(seed, r.patient), rng_for(seed, 4, r.lesion));
    let sites = "anterior torso,upper extremity,posterior torso,lower extremity,lateral torso,\
        head/neck,palms/soles,oral/genital,";
    let site = pick(sites, &mut rng);
    let lesion_id = match (r.anonymous, r.lesion % 3) {
        (true, _) => String::new(),
        (false, 0) => format!("HAM_{:07}", r.lesion),
        _ => format!("BCN_{:07}", r.lesion),
    };
    let meta = format!("{},{},{site},{lesion_id},{}", r.cell, age(&p), sex(&p));
    (truth, meta)
}

fn isic2020(seed: u64, index: usize, r: &Row) -> String {
    let (p, mut rng) = (person(seed, r.patient), rng_for(seed, 4, index));
    let sites = "torso,torso,lower extremity,upper extremity,head/neck,palms/soles,oral/genital,";
    let site = pick(sites, &mut rng);
    let kinds = [
        "unknown",
        "nevus",
        "seborrheic keratosis",
        "lentigo NOS",
        "lichenoid keratosis",
    ];
    let (diagnosis, verdict) = match r.class {
        1 => ("melanoma", "malignant"),
        _ => (
            kinds[draw(&[88.0, 10.0, 1.0, 0.5, 0.5], &mut rng)],
            "benign",
        ),
    };
    let patient = format!("IP_{:07}", (r.patient * 7919 + 1_234_567) % 10_000_000);
    let (sex, age) = (sex(&p), age(&p));
    let class = r.class;
    format!(
        "{},{patient},{sex},{age},{site},{diagnosis},{verdict},{class}",
        r.cell
    )
}

/// PAD-UFES-20: the history columns (and Fitzpatrick type, diameters) are
/// empty for about a third of the patients, as in the original; booleans are
/// spelled `True`/`False`, ages are whole years.
fn pad(seed: u64, r: &Row) -> String {
    let p = person(seed, r.patient);
    let (mut who, mut les) = (rng_for(seed, 5, r.patient), rng_for(seed, 4, r.lesion));
    let known = who.gen_bool(0.65);
    let mut history = Vec::new();
    let lands = "POMERANIA,GERMANY,BRAZIL,ITALY,NETHERLANDS,POLAND,PORTUGAL,UNK";
    // smoke .. has_sewage_system, with age inserted after background_mother.
    let tf = "True,False";
    for items in [tf, tf, lands, lands, tf, "MALE,FEMALE", tf, tf, tf, tf] {
        history.push(if known { pick(items, &mut who) } else { "" });
    }
    let age = p.age.unwrap_or(50) + (r.patient % 5) as u32;
    let (before, after) = history.split_at(4);
    let fitz = if known {
        format!("{}.0", p.fitzpatrick)
    } else {
        String::new()
    };
    let regions = "FACE,NOSE,ARM,FOREARM,CHEST,BACK,HAND,NECK,EAR,THIGH,SCALP,LIP";
    let region = pick(regions, &mut les);
    let mut diameter = || match known {
        true => format!("{}.0", les.gen_range(3..25)),
        false => String::new(),
    };
    let (d1, d2) = (diameter(), diameter());
    let diagnostic = class(Layout::PadUfes20, r);
    let signs: Vec<&str> = (0..6)
        .map(|_| pick("True,False,False,UNK", &mut les))
        .collect();
    let biopsed = matches!(diagnostic, "MEL" | "BCC" | "SCC") || les.gen_bool(0.3);
    let biopsed = if biopsed { "True" } else { "False" };
    format!(
        "PAT_{},{},{},{age},{},{fitz},{region},{d1},{d2},{diagnostic},{},{},{biopsed}",
        8 + r.patient,
        12 + r.lesion,
        before.join(","),
        after.join(","),
        signs.join(","),
        r.cell
    )
}

fn write_csv(path: &Path, header: &str, rows: impl Iterator<Item = String>) -> Result<()> {
    let mut text = format!("{header}\n");
    for row in rows {
        text.push_str(&row);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Writes the layout's CSV files into `root` (ImageFolder has none).
pub(super) fn write_tables(layout: Layout, root: &Path, rows: &[Row], seed: u64) -> Result<()> {
    let at = |name: &str| root.join(name);
    match layout {
        Layout::ImageFolder => Ok(()),
        Layout::Ham10000 => {
            let table = rows.iter().map(|r| ham(seed, r));
            write_csv(&at("HAM10000_metadata.csv"), HAM_HEADER, table)
        }
        Layout::Isic2019 => {
            let (truth, meta): (Vec<_>, Vec<_>) = rows.iter().map(|r| isic2019(seed, r)).unzip();
            let truth_csv = at("ISIC_2019_Training_GroundTruth.csv");
            write_csv(&truth_csv, ISIC2019_TRUTH_HEADER, truth.into_iter())?;
            let meta_csv = at("ISIC_2019_Training_Metadata.csv");
            write_csv(&meta_csv, ISIC2019_META_HEADER, meta.into_iter())
        }
        Layout::Isic2020 => {
            let table = rows.iter().enumerate().map(|(i, r)| isic2020(seed, i, r));
            write_csv(&at("train.csv"), ISIC2020_HEADER, table)
        }
        Layout::PadUfes20 => {
            let table = rows.iter().map(|r| pad(seed, r));
            write_csv(&at("metadata.csv"), PAD_HEADER, table)
        }
    }
}
