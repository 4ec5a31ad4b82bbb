<?php
// The example site: shows which release is live and what survives releases in shared/.
$release = basename(realpath(__DIR__ . '/..'));
$visits = __DIR__ . '/../storage/visits.txt';
$count = (int) @file_get_contents($visits) + 1;
@file_put_contents($visits, (string) $count);
?>
<!doctype html>
<title>atomic-deploy example</title>
<link rel="stylesheet" href="/assets/site.css">
<h1><?= htmlspecialchars(require __DIR__ . '/../config/general.php')['siteName'] ?></h1>
<p>Release <code><?= htmlspecialchars($release) ?></code>; visit <?= $count ?>
   (counted in <code>storage/</code>, which survives releases).</p>
